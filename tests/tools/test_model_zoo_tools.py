"""tools/model_zoo.py (list, download, eval) and tools/publish_model_zoo.py as processes."""

import json
import os
import subprocess
import sys

import pytest
import torch

from ride_dive import model_zoo
from ride_dive.utils.env import autocast_name, resolve_amp
from tests.conftest import ROOT
from tests.zoo.conftest import checkpoint_bytes, start_zoo_server, write_zoo, zoo_model
from tests.zoo.test_publish import fake_run

ZOO_TOOL = os.path.join(ROOT, "tools", "model_zoo.py")
PUBLISH_TOOL = os.path.join(ROOT, "tools", "publish_model_zoo.py")
FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
CE = "FashionMNIST-LT/ce_r32.yaml"
ROUTER = "FashionMNIST-LT/ride_dive_4e_r32_router.yaml"
CRT = "FashionMNIST-LT/crt_r32.yaml"


def _run(tool, args, env, timeout=300):
    return subprocess.run(
        [sys.executable, tool, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=dict(os.environ, **env),
    )


@pytest.fixture
def zoo_env(tmp_path):
    """Environment variables pointing the tools at a served one-entry zoo (a random CE model)."""
    (tmp_path / "served").mkdir()
    server, base_url = start_zoo_server(tmp_path / "served")
    manifest = str(tmp_path / "manifest.json")
    write_zoo(server.root, manifest, checkpoint_bytes(zoo_model(CE), tmp_path), name=CE)
    yield (
        server,
        {
            model_zoo.MANIFEST_ENV: manifest,
            model_zoo.BASE_URL_ENV: base_url,
            model_zoo.CACHE_ENV: str(tmp_path / "cache"),
        },
    )
    server.shutdown()
    server.server_close()


def test_list_and_download(zoo_env):
    server, env = zoo_env
    listing = _run(ZOO_TOOL, ["list"], env)
    assert listing.returncode == 0, listing.stderr
    assert "1 entries" in listing.stdout and CE in listing.stdout
    got = _run(ZOO_TOOL, ["download", CE], env)
    assert got.returncode == 0, got.stderr
    assert os.path.isfile(got.stdout.strip()) and len(server.requests) == 1


def test_unknown_entry_is_one_clear_error(zoo_env):
    _, env = zoo_env
    r = _run(ZOO_TOOL, ["download", "FashionMNIST-LT/ce_r23.yaml"], env)
    assert r.returncode == 2 and "Did you mean FashionMNIST-LT/ce_r32.yaml" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not os.path.isfile(FMNIST), reason="Fashion-MNIST is not installed")
def test_eval_downloads_and_evaluates_a_ride_dive_model_in_one_call(tmp_path):
    """The README's one call, on a served RIDE-DiVE 4E + router entry (random weights; a
    short threshold sweep keeps it quick)."""
    (tmp_path / "served").mkdir()
    server, base_url = start_zoo_server(tmp_path / "served")
    try:
        manifest = str(tmp_path / "manifest.json")
        write_zoo(server.root, manifest, checkpoint_bytes(zoo_model(ROUTER), tmp_path), name=ROUTER)
        env = {
            model_zoo.MANIFEST_ENV: manifest,
            model_zoo.BASE_URL_ENV: base_url,
            model_zoo.CACHE_ENV: str(tmp_path / "cache"),
        }
        out = tmp_path / "eval"
        r = _run(
            ZOO_TOOL,
            [
                "eval",
                ROUTER,
                "OUTPUT_DIR",
                str(out),
                "TEST.BATCH_SIZE",
                "500",
                "TEST.ROUTER_THRESHOLDS",
                "[0.5]",
                # bf16 evaluation halves the four passes' time where bf16 is native ("auto"
                # stays fp32 where it would be emulated); the fp32 default of evaluation is
                # tested in tests/evaluation/test_eval_precision.py.
                "TEST.AMP.ENABLED",
                "True",
            ],
            env,
            # Four passes over the 10k test images (selection, test, validation, router
            # sweep): about 2 minutes alone on 2 cores, several times that when shared.
            timeout=900,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(server.requests) == 1
    results = json.loads((out / "results.json").read_text())
    assert results["num_samples"] == 10000 and 0 <= results["top1"] <= 100
    # The override reached the run: "auto" resolved for this machine, as the run did.
    dtype, _ = resolve_amp(True, "auto", torch.device("cpu"))
    assert results["eval_precision"] == autocast_name(dtype)
    assert results["router"]["selection"]["split"] == "val"  # threshold chosen on validation


@pytest.mark.skipif(not os.path.isfile(FMNIST), reason="Fashion-MNIST is not installed")
def test_publish_tool_writes_manifest_table_and_file(tmp_path):
    fake_run(tmp_path / "run")
    manifest, table, out = tmp_path / "m.json", tmp_path / "MODEL_ZOO.md", tmp_path / "upload"
    r = _run(
        PUBLISH_TOOL,
        [
            str(tmp_path / "run"),
            "--manifest",
            str(manifest),
            "--model-zoo-md",
            str(table),
            "--output-dir",
            str(out),
            "--base-url",
            "https://mirror.example/zoo",
        ],
        {},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    entry = json.loads(manifest.read_text())["entries"][0]
    assert entry["name"] == CE and (out / entry["file"]).is_file()
    assert entry["class_counts"][0] > entry["class_counts"][-1]  # read from the dataset
    assert f"https://mirror.example/zoo/{entry['file']}" in table.read_text()


def test_publish_tool_refuses_a_directory_that_is_not_a_run(tmp_path):
    r = _run(PUBLISH_TOOL, [str(tmp_path), "--manifest", str(tmp_path / "m.json")], {})
    assert r.returncode == 2 and "not a finished run" in r.stderr
    assert not (tmp_path / "m.json").exists()


@pytest.mark.skipif(not os.path.isfile(FMNIST), reason="Fashion-MNIST is not installed")
def test_publish_evaluate_scores_the_published_weights_as_they_are(tmp_path, monkeypatch):
    """``--evaluate`` loads the published file through the trainer's eval-only path; a cRT
    model, whose config re-initialises the classifier before training, keeps its own."""
    from benchmarks import publish
    from ride_dive.engine import DefaultTrainer

    model = zoo_model(CRT, seed=5)
    weights = tmp_path / "crt.pth"
    torch.save({"model": model.state_dict()}, weights)
    seen = {}

    def fake_test(trainer):  # what would be evaluated, without evaluating it
        seen.update(output_dir=trainer.cfg.OUTPUT_DIR, state=trainer.model.state_dict())
        return {"top1": 1.0}

    monkeypatch.setattr(DefaultTrainer, "test", fake_test)
    assert publish.evaluate_published(CRT, str(weights), str(tmp_path / "eval")) == {"top1": 1.0}
    assert seen["output_dir"] == str(tmp_path / "eval")
    for k, v in model.state_dict().items():
        assert torch.equal(seen["state"][k].cpu(), v), k
