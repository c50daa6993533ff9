"""Registries and ``build_*``: every expected name exists and builds from a tiny config."""
import pytest
import torch

from ride_dive.config import ConfigError
from ride_dive.modeling import (
    BACKBONE_REGISTRY,
    HEAD_REGISTRY,
    LOSS_REGISTRY,
    META_ARCH_REGISTRY,
    build_backbone,
    build_model,
    resolve_device,
)

EXPECTED = {
    META_ARCH_REGISTRY: {"Classifier"},
    BACKBONE_REGISTRY: {"ResNet32", "ResNet50", "ResNeXt50", "ResNet152"},
    HEAD_REGISTRY: {"LinearHead", "CosineHead", "LWSHead"},
    LOSS_REGISTRY: {"CrossEntropyLoss", "BalancedSoftmaxLoss", "LDAMLoss", "FocalLoss"},
}
COUNTS = [30, 10, 3]


@pytest.mark.parametrize("registry", list(EXPECTED), ids=lambda r: r._name)
def test_every_name_is_registered_under_its_class_name(registry):
    registered = dict(registry)
    assert EXPECTED[registry] <= set(registered)
    for name, obj in registered.items():
        assert obj.__name__ == name


@pytest.mark.parametrize("name", sorted(EXPECTED[BACKBONE_REGISTRY]))
def test_every_backbone_builds_from_config(model_cfg, name):
    model_cfg.MODEL.BACKBONE.NAME = name
    model_cfg.MODEL.BACKBONE.IN_CHANNELS = 1
    backbone = build_backbone(model_cfg).eval()
    assert backbone(torch.randn(2, 1, 20, 20)).shape == (2, backbone.out_features)


@pytest.mark.parametrize("head", sorted(EXPECTED[HEAD_REGISTRY]))
@pytest.mark.parametrize("loss", sorted(EXPECTED[LOSS_REGISTRY]))
def test_every_head_and_loss_combination_runs(model_cfg, head, loss):
    model_cfg.MODEL.HEAD.NAME = head
    model_cfg.MODEL.LOSS.NAME = loss
    model_cfg.MODEL.LOSS.DRW_EPOCH = 0
    model = build_model(model_cfg, COUNTS)
    value = model(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))["loss_cls"]
    value.backward()
    assert torch.isfinite(value)
    assert model.eval()(torch.randn(4, 3, 8, 8)).shape == (4, 3)


@pytest.mark.parametrize(
    "key, attr",
    [
        ("MODEL.META_ARCHITECTURE", "META_ARCHITECTURE"),
        ("MODEL.BACKBONE.NAME", "BACKBONE"),
        ("MODEL.HEAD.NAME", "HEAD"),
        ("MODEL.LOSS.NAME", "LOSS"),
    ],
)
def test_unknown_names_are_config_errors_naming_the_key(model_cfg, key, attr):
    node = model_cfg.MODEL
    if attr == "META_ARCHITECTURE":
        node.META_ARCHITECTURE = "Clasifier"
    else:
        node[attr].NAME = "Nope"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_model(model_cfg, COUNTS)


def test_channels_last(model_cfg):
    model_cfg.MODEL.CHANNELS_LAST = True
    model = build_model(model_cfg, COUNTS)
    assert model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert model(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))["loss_cls"].isfinite()


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="MODEL.DEVICE"):
        resolve_device("tpu-ish")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="not available"):
        resolve_device("cuda")
