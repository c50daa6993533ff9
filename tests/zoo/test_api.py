"""``model_zoo.get`` / ``get_config`` / ``MODEL.WEIGHTS zoo:...`` on a locally served zoo."""

import os

import pytest
import torch

from ride_dive import model_zoo
from ride_dive.checkpoint import Checkpointer
from ride_dive.config import ConfigError

from .conftest import (
    CLASS_COUNTS,
    ROUTER_THRESHOLD,
    ZOO_NAME,
    checkpoint_bytes,
    write_zoo,
    zoo_model,
)


@pytest.fixture
def served(zoo_server, tmp_path):
    server, base_url = zoo_server
    model = zoo_model(seed=1)
    manifest = str(tmp_path / "manifest.json")
    write_zoo(server.root, manifest, checkpoint_bytes(model, tmp_path))
    kwargs = {
        "base_url": base_url,
        "cache": str(tmp_path / "cache"),
        "manifest": manifest,
        "progress": False,
    }
    return model, kwargs


def test_get_builds_and_loads_the_published_weights(served):
    reference, kwargs = served
    model = model_zoo.get(ZOO_NAME, trained=True, device="cpu", **kwargs)
    assert not model.training
    images = torch.randn(3, 1, 28, 28)
    reference.router_threshold = 0.0  # the full ensemble on both sides
    model.router_threshold = ROUTER_THRESHOLD
    with torch.no_grad():
        assert model.router_threshold == ROUTER_THRESHOLD  # from the entry's metrics
        model.router_threshold = 0.0
        torch.testing.assert_close(model(images)["logits"], reference(images)["logits"])


def test_get_untrained_is_randomly_initialised(served):
    reference, kwargs = served
    model = model_zoo.get(ZOO_NAME, trained=False, device="cpu", **kwargs)
    assert not torch.equal(
        model.state_dict()["heads.0.weight"], reference.state_dict()["heads.0.weight"]
    )


def test_get_config_trained_sets_weights_and_inference_settings(served):
    _, kwargs = served
    cfg = model_zoo.get_config(ZOO_NAME, trained=True, **kwargs)
    assert os.path.isfile(cfg.MODEL.WEIGHTS)
    assert cfg.MODEL.ROUTER.TRAIN is False  # the packaged router config trains the router
    assert cfg.MODEL.ROUTER.THRESHOLD == ROUTER_THRESHOLD
    assert model_zoo.get_config(ZOO_NAME).MODEL.ROUTER.TRAIN is True


def test_model_weights_zoo_prefix_goes_through_the_verified_download(served, monkeypatch):
    reference, kwargs = served
    monkeypatch.setenv(model_zoo.MANIFEST_ENV, kwargs["manifest"])
    monkeypatch.setenv(model_zoo.BASE_URL_ENV, kwargs["base_url"])
    monkeypatch.setenv(model_zoo.CACHE_ENV, kwargs["cache"])
    model = zoo_model(seed=2)
    Checkpointer(model, save_dir="").load("zoo:" + ZOO_NAME, checkpointables=[])
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_packaged_config_names_and_errors():
    names = model_zoo.list_config_names()
    assert ZOO_NAME in names and "CIFAR100-LT/ride_4e_r32_if100.yaml" in names
    assert os.path.isfile(model_zoo.get_config_file("ImageNet-LT/crt_x50.yaml"))
    with pytest.raises(ConfigError, match="Did you mean FashionMNIST-LT/ce_r32.yaml"):
        model_zoo.get_config_file("FashionMNIST-LT/ce_r23.yaml")
    with pytest.raises(ConfigError, match="relative to configs/"):
        model_zoo.get_config_file("../setup.py")


def test_get_without_class_counts_for_a_config_outside_the_zoo(served):
    _, kwargs = served
    with pytest.raises(ConfigError, match="pass class_counts"):
        model_zoo.get("FashionMNIST-LT/ce_r32.yaml", **kwargs)
    model = model_zoo.get(
        "FashionMNIST-LT/ce_r32.yaml", class_counts=CLASS_COUNTS, device="cpu", **kwargs
    )
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_a_zoo_teacher_is_downloaded_for_distillation(served, monkeypatch):
    from ride_dive.config import get_cfg
    from ride_dive.modeling.teacher import teacher_cfg

    _, kwargs = served
    monkeypatch.setenv(model_zoo.MANIFEST_ENV, kwargs["manifest"])
    monkeypatch.setenv(model_zoo.BASE_URL_ENV, kwargs["base_url"])
    monkeypatch.setenv(model_zoo.CACHE_ENV, kwargs["cache"])
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("FashionMNIST-LT/ride_dive_4e_r32.yaml"))
    cfg.merge_from_list(
        [
            "MODEL.TEACHER.CONFIG_FILE",
            model_zoo.get_config_file(ZOO_NAME),
            "MODEL.TEACHER.WEIGHTS",
            "zoo:" + ZOO_NAME,
        ]
    )
    tcfg = teacher_cfg(cfg)
    assert os.path.isfile(tcfg.MODEL.WEIGHTS)
    assert tcfg.MODEL.WEIGHTS.startswith(os.path.join(kwargs["cache"], "model_zoo"))
