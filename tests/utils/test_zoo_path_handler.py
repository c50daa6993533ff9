"""``zoo:`` weights through the project's ``PathManager``: the handler ``ride_dive.model_zoo``
registers, resolving against a local ``file://`` zoo, and its errors."""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from ride_dive import model_zoo
from ride_dive.checkpoint import Checkpointer
from ride_dive.model_zoo import DownloadError, ManifestError
from ride_dive.utils.file_io import PathManager
from tests.conftest import ROOT
from tests.zoo.conftest import ZOO_NAME, write_zoo


@pytest.fixture
def local_zoo(tmp_path):
    """A zoo served from a directory (``file://``) holding one small checkpoint of
    ``nn.Linear(3, 2)``; returns ``(model, payload, download kwargs)``."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    torch.save({"model": model.state_dict()}, tmp_path / "ckpt.pth")
    payload = (tmp_path / "ckpt.pth").read_bytes()
    served = tmp_path / "served"
    manifest = str(tmp_path / "manifest.json")
    write_zoo(str(served), manifest, payload)
    kwargs = {
        "base_url": (served / "zoo").as_uri(),
        "cache": str(tmp_path / "cache"),
        "manifest": manifest,
        "progress": False,
    }
    return model, payload, kwargs


@pytest.fixture
def zoo_env(local_zoo, monkeypatch):
    """The local zoo as the default one (what a ``MODEL.WEIGHTS zoo:...`` run sees)."""
    _, _, kwargs = local_zoo
    monkeypatch.setenv(model_zoo.MANIFEST_ENV, kwargs["manifest"])
    monkeypatch.setenv(model_zoo.BASE_URL_ENV, kwargs["base_url"])
    monkeypatch.setenv(model_zoo.CACHE_ENV, kwargs["cache"])
    return local_zoo


def test_zoo_path_becomes_the_verified_cached_file(local_zoo):
    _, payload, kwargs = local_zoo
    path = PathManager.get_local_path(model_zoo.ZOO_PREFIX + ZOO_NAME, **kwargs)
    assert path.startswith(os.path.join(kwargs["cache"], "model_zoo"))
    assert open(path, "rb").read() == payload
    assert path == model_zoo.download(ZOO_NAME, **kwargs)  # the same verified copy


def test_plain_paths_are_unchanged(tmp_path):
    plain = str(tmp_path / "model_final.pth")
    assert PathManager.get_local_path(plain) == plain
    assert PathManager.get_local_path("output/run/model_final.pth") == "output/run/model_final.pth"


def test_checkpointer_loads_zoo_weights_through_the_handler(zoo_env):
    reference, _, _ = zoo_env
    model = nn.Linear(3, 2)
    Checkpointer(model, save_dir="").load("zoo:" + ZOO_NAME, checkpointables=[])
    torch.testing.assert_close(model.state_dict(), reference.state_dict())


def test_unknown_zoo_name_keeps_the_manifest_message(zoo_env):
    wrong = ZOO_NAME.replace("router", "ruoter")
    with pytest.raises(
        ManifestError, match=f"No model zoo entry '{wrong}'. Did you mean {ZOO_NAME}?"
    ):
        Checkpointer(nn.Linear(3, 2), save_dir="").load("zoo:" + wrong)


def test_failed_download_keeps_the_download_message(zoo_env, tmp_path):
    _, payload, kwargs = zoo_env
    write_zoo(str(tmp_path / "served"), kwargs["manifest"], payload, sha256="0" * 64)
    with pytest.raises(DownloadError, match=r"sha256 [0-9a-f]{64} instead of 0{64}.*deleted"):
        Checkpointer(nn.Linear(3, 2), save_dir="").load("zoo:" + ZOO_NAME)


def test_a_prefix_without_handler_is_named():
    with pytest.raises(
        FileNotFoundError, match="No path handler is registered for the prefix 'catalog:'"
    ):
        Checkpointer(nn.Linear(3, 2), save_dir="").load("catalog:ImageNet/R-50")


def test_importing_the_engine_registers_the_handler_and_checkpoint_alone_does_not(zoo_env):
    # A fresh interpreter: in this one the zoo is imported already.
    script = (
        "import sys\n"
        "from ride_dive.checkpoint import Checkpointer\n"
        "from ride_dive.utils.file_io import PathManager\n"
        f"name = 'zoo:{ZOO_NAME}'\n"
        "assert 'ride_dive.model_zoo' not in sys.modules, 'checkpoint imported the zoo'\n"
        "assert PathManager.get_local_path(name) == name\n"
        "import ride_dive.engine\n"
        "print(PathManager.get_local_path(name))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == model_zoo.download(ZOO_NAME, **zoo_env[2])
