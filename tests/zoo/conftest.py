"""A real HTTP server on 127.0.0.1 serving a model zoo directory, and a zoo built on it.

The zoo holds one entry under a real packaged config name, a randomly initialised model of
that config, so that ``model_zoo.get`` builds the real architecture while nothing in the
tests depends on downloads from outside the machine.
"""

import functools
import hashlib
import http.server
import json
import os
import threading

import pytest
import torch

from ride_dive.config import get_cfg
from ride_dive.model_zoo import resources
from ride_dive.modeling import build_model

ZOO_NAME = "FashionMNIST-LT/ride_dive_4e_r32_router.yaml"
CLASS_COUNTS = [100, 60, 36, 22, 13, 8, 5, 3, 2, 1]
ROUTER_THRESHOLD = 0.35


class _ZooHandler(http.server.SimpleHTTPRequestHandler):
    """Serves ``server.root``; counts GETs; ``server.truncate`` paths send half the body."""

    def do_GET(self):  # noqa: N802 - the http.server API
        self.server.requests.append(self.path)
        if self.path.lstrip("/") in self.server.truncate:
            body = open(os.path.join(self.server.root, self.path.lstrip("/")), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))  # promises the whole file
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output clean
        pass


def start_zoo_server(root):
    """Serve directory ``root`` on a random free port: ``(server, base_url of root/zoo)``;
    stop it with ``server.shutdown(); server.server_close()``."""
    handler = functools.partial(_ZooHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.root, server.requests, server.truncate = str(root), [], set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/zoo"


@pytest.fixture
def zoo_server(tmp_path):
    """``(server, base_url)``: serving ``tmp_path/served`` on a random free port."""
    root = tmp_path / "served"
    root.mkdir()
    server, base_url = start_zoo_server(root)
    yield server, base_url
    server.shutdown()
    server.server_close()


def zoo_model(name=ZOO_NAME, seed=0):
    """The model of packaged config ``name`` with random weights (CPU, eval mode)."""
    cfg = get_cfg()
    cfg.merge_from_file(resources.config_path(name))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    if cfg.MODEL.ROUTER.ENABLED:
        cfg.merge_from_list(["MODEL.ROUTER.TRAIN", "False"])
    torch.manual_seed(seed)
    return build_model(cfg, class_counts=CLASS_COUNTS).eval()


def write_zoo(
    served_dir,
    manifest_path,
    payload_bytes,
    name=ZOO_NAME,
    sha256=None,
    size=None,
    rel_file="FashionMNIST-LT/model-test.pth",
    serve=True,
):
    """Put ``payload_bytes`` under ``served_dir/zoo/rel_file`` and write a manifest for it."""
    if serve:
        path = os.path.join(served_dir, "zoo", *rel_file.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(payload_bytes)
    entry = {
        "name": name,
        "file": rel_file,
        "sha256": sha256 or hashlib.sha256(payload_bytes).hexdigest(),
        "size": len(payload_bytes) if size is None else size,
        "method": "test",
        "dataset": name.split("/")[0],
        "metrics": {"top1": 50.0, "router_threshold": ROUTER_THRESHOLD},
        "params": 1.0,
        "class_counts": CLASS_COUNTS,
        "source": {},
    }
    with open(manifest_path, "w") as f:
        json.dump({"version": 1, "base_url": "", "entries": [entry]}, f)
    return entry


def checkpoint_bytes(model, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"model": model.state_dict()}, path)
    return path.read_bytes()
