"""RIDE backbones: registration, shapes, parameter and MAC counts, batched == looped experts."""

import copy

import pytest
import torch

from ride_dive.config import ConfigError, get_cfg
from ride_dive.evaluation import expert_count_macs
from ride_dive.modeling import (
    BACKBONE_REGISTRY,
    LOSS_REGISTRY,
    META_ARCH_REGISTRY,
    build_backbone,
    build_model,
    count_parameters,
)
from ride_dive.modeling.backbones import RIDEResNet32, RIDEResNeXt50
from ride_dive.modeling.norm import to_group_norm


def _cpu_cfg():
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def _ride_cfg(cfg, backbone="RIDEResNet32", experts=3, classes=100, base="CrossEntropyLoss"):
    cfg.MODEL.META_ARCHITECTURE = "RIDE"
    cfg.MODEL.BACKBONE.NAME = backbone
    cfg.MODEL.RIDE.NUM_EXPERTS = experts
    cfg.MODEL.HEAD.NAME = "CosineHead"
    cfg.MODEL.LOSS.NAME = "RIDELoss"
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = base
    cfg.MODEL.NUM_CLASSES = classes
    return cfg


def test_ride_names_are_registered_under_their_class_names():
    for registry, names in (
        (META_ARCH_REGISTRY, {"RIDE"}),
        (BACKBONE_REGISTRY, {"RIDEResNet32", "RIDEResNet50", "RIDEResNeXt50"}),
        (LOSS_REGISTRY, {"RIDELoss"}),
    ):
        registered = dict(registry)
        for name in names:
            assert registered[name].__name__ == name


def _basic_block_params(cin, c):  # two 3x3 convs + two BNs; option-A shortcut is free
    return 9 * cin * c + 9 * c * c + 4 * c


def _stage_params(cin, c, blocks):
    return _basic_block_params(cin, c) + (blocks - 1) * _basic_block_params(c, c)


@pytest.mark.parametrize("experts", [3, 4, 6])
def test_ride_resnet32_parameter_count_by_hand(experts):
    trunk = 3 * 16 * 9 + 2 * 16 + _stage_params(16, 16, 5)
    expert = _stage_params(16, 24, 5) + _stage_params(24, 48, 5) + 48 * 100  # + cosine head
    model = build_model(_ride_cfg(_cpu_cfg(), experts=experts))
    assert count_parameters(model) == trunk + experts * expert


def _bottleneck_params(cin, planes, groups, wpg):
    width = int(planes * wpg / 64) * groups
    out = 4 * planes
    params = cin * width + width * (width // groups) * 9 + width * out + 4 * width + 2 * out
    if cin != out:
        params += cin * out + 2 * out
    return params


def test_ride_resnext50_parameter_count_by_hand():
    def stage(cin, planes, blocks):
        return _bottleneck_params(cin, planes, 32, 4) + (blocks - 1) * _bottleneck_params(
            4 * planes, planes, 32, 4
        )

    trunk = 3 * 64 * 49 + 2 * 64 + stage(64, 64, 3) + stage(256, 128, 4)
    expert = stage(512, 192, 6) + stage(768, 384, 3)
    backbone = RIDEResNeXt50(num_experts=2)
    assert backbone.out_features == 1536
    assert count_parameters(backbone) == trunk + 2 * expert


@pytest.mark.parametrize("experts, expected", [(3, 0.100), (4, 0.126), (6, 0.177)])
def test_ride_resnet32_macs_match_the_paper(experts, expected):
    model = build_model(_ride_cfg(_cpu_cfg(), experts=experts))
    gmacs = expert_count_macs(model, (3, 32, 32), [experts], routers=False)[0]
    assert gmacs == pytest.approx(expected, rel=0.02)


def test_ride_imagenet_macs_match_the_paper():
    # A sample that runs the first k experts of a 6-expert model costs exactly what a
    # k-expert model costs (same trunk, same experts, k heads), so one model gives all three.
    resnext = build_model(_ride_cfg(_cpu_cfg(), "RIDEResNeXt50", 6, classes=1000))
    gmacs = expert_count_macs(resnext, (3, 224, 224), [3, 4, 6], routers=False)
    assert gmacs == pytest.approx([6.05, 7.45, 10.26], rel=0.02)
    resnet = build_model(_ride_cfg(_cpu_cfg(), "RIDEResNet50", 3, classes=1000))
    assert expert_count_macs(resnet, (3, 224, 224), [3], routers=False)[0] == pytest.approx(
        5.77, rel=0.02
    )


@pytest.mark.parametrize("name", ["RIDEResNet32", "RIDEResNet50", "RIDEResNeXt50"])
def test_every_ride_backbone_gives_one_feature_per_expert(model_cfg, name):
    model_cfg.MODEL.BACKBONE.NAME = name
    model_cfg.MODEL.BACKBONE.WIDTH_MULT = 0.125 if name != "RIDEResNet32" else 0.25
    model_cfg.MODEL.RESNET.GROUPS = 4  # ResNeXt's 32 groups would need width >= 0.25
    model_cfg.MODEL.RESNET.WIDTH_PER_GROUP = 16
    model_cfg.MODEL.BACKBONE.IN_CHANNELS = 1
    model_cfg.MODEL.RIDE.NUM_EXPERTS = 2
    backbone = build_backbone(model_cfg).eval()
    images = torch.randn(3, 1, 20, 20)
    with torch.no_grad():
        feats = backbone(images)
        shared = backbone.forward_trunk(images)
    assert feats.shape == (2, 3, backbone.out_features)
    assert backbone.forward_experts(shared, 1, 2).shape == (1, 3, backbone.out_features)
    with pytest.raises(ValueError, match="outside"):
        backbone.forward_experts(shared, 1, 3)


def test_expert_widths_come_from_the_config(model_cfg):
    model_cfg.MODEL.BACKBONE.NAME = "RIDEResNet32"
    model_cfg.MODEL.BACKBONE.WIDTH_MULT = 1.0
    model_cfg.MODEL.RIDE.EXPERT_WIDTHS = [32, 64]
    backbone = build_backbone(model_cfg)
    assert backbone.out_features == 64
    assert backbone.layer2s[0][0].conv1.out_channels == 32
    with pytest.raises(ValueError, match="EXPERT_WIDTHS"):
        RIDEResNet32(expert_widths=(24, 48, 96))


def _train_step(backbone, x):
    out = backbone(x)
    (out.square().mean() + out[1].sum()).backward()  # expert-dependent gradients
    return out


def _relative_error(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@pytest.mark.parametrize(
    "make",
    [
        lambda: RIDEResNet32(num_experts=3, width_mult=0.25),
        # Grouped 3x3 convolutions and projection shortcuts, at a tiny width.
        lambda: RIDEResNeXt50(num_experts=3, width_mult=0.125, groups=4, width_per_group=16),
        # MODEL.BACKBONE.NORM "GN": each expert's groups must stay its own in the batched path.
        lambda: to_group_norm(RIDEResNet32(num_experts=3, width_mult=0.25), max_groups=2),
    ],
    ids=["RIDEResNet32", "RIDEResNeXt50", "RIDEResNet32-GN"],
)
def test_batched_experts_equal_the_python_loop(make):
    """Same outputs, gradients and BN running statistics, in train and eval mode.

    Train-mode BN on a 6-image batch amplifies rounding, so the comparison is relative to
    each tensor's norm; a mix-up of experts or channels would be off by order 1.
    """
    batched = make()
    looped = copy.deepcopy(batched)
    batched.batched, looped.batched = True, False
    x = torch.randn(6, 3, 24, 24)
    assert _relative_error(_train_step(batched, x), _train_step(looped, x)) < 1e-5
    for (name, b), (_, lp) in zip(batched.named_parameters(), looped.named_parameters()):
        assert _relative_error(b.grad, lp.grad) < 1e-3, name
    looped_state = looped.state_dict()
    for key, value in batched.state_dict().items():  # running means/vars, batch counters
        if key.endswith("num_batches_tracked"):
            assert torch.equal(value, looped_state[key]), key
        else:
            assert _relative_error(value, looped_state[key]) < 1e-5, key
    with torch.no_grad():
        assert _relative_error(batched.eval()(x), looped.eval()(x)) < 1e-5


def test_ride_needs_multi_expert_backbone_and_loss():
    with pytest.raises(ConfigError, match="multi-expert MODEL.BACKBONE.NAME"):
        build_model(_ride_cfg(_cpu_cfg(), backbone="ResNet32"))
    cfg = _ride_cfg(_cpu_cfg())
    cfg.MODEL.LOSS.NAME = "CrossEntropyLoss"
    with pytest.raises(ConfigError, match="RIDELoss"):
        build_model(cfg)
