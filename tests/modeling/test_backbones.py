"""Backbones: published sizes, torchvision equivalence, shapes, normalisation, freezing."""

import math

import pytest
import torch
import torchvision

from ride_dive.modeling.backbones import (
    BasicBlock,
    Bottleneck,
    PadShortcut,
    ResNet32,
    ResNet50,
    ResNet152,
    ResNeXt50,
    make_stage,
)
from ride_dive.modeling.complexity import count_parameters
from ride_dive.modeling.heads import LinearHead


def test_resnet32_has_the_published_size_with_option_a_shortcuts():
    # 0.47 M with a 100-class linear head (64 * 100 + 100 parameters).
    backbone = ResNet32()
    head = LinearHead(in_features=64, num_classes=100)
    total = count_parameters(backbone) + count_parameters(head)
    assert backbone.out_features == 64
    assert abs(total - 0.47e6) / 0.47e6 < 0.03
    assert total == 470004  # option A shortcuts are parameter-free
    projected = count_parameters(ResNet32(shortcut="conv")) + 6500
    assert projected - total == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (ResNet50, torchvision.models.resnet50),
        (ResNeXt50, torchvision.models.resnext50_32x4d),
        (ResNet152, torchvision.models.resnet152),
    ],
)
def test_imagenet_resnets_match_torchvision_parameter_counts(ours, theirs):
    with torch.device("meta"):  # counting needs shapes only, not memory or init time
        backbone = ours()
        head = LinearHead(in_features=backbone.out_features, num_classes=1000)
        reference = theirs(num_classes=1000)
    assert backbone.out_features == 2048
    assert count_parameters(backbone) + count_parameters(head) == count_parameters(reference)


@pytest.mark.parametrize(
    "ours, theirs",
    [(ResNet50, torchvision.models.resnet50), (ResNeXt50, torchvision.models.resnext50_32x4d)],
)
def test_imagenet_resnets_compute_what_torchvision_computes(ours, theirs):
    reference = theirs().eval()
    backbone = ours().eval()
    weights = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    backbone.load_state_dict(weights)  # strict: the module names are torchvision's
    images = torch.randn(2, 3, 64, 48)
    trunk = torch.nn.Sequential(*list(reference.children())[:-1])
    with torch.no_grad():
        torch.testing.assert_close(backbone(images), trunk(images).flatten(1))


@pytest.mark.parametrize("size", [(28, 28), (33, 17), (7, 5), (1, 1)])
@pytest.mark.parametrize("in_channels", [1, 4])
def test_resnet32_any_input_size_and_channels(size, in_channels):
    backbone = ResNet32(in_channels=in_channels, width_mult=0.25)
    out = backbone(torch.randn(2, in_channels, *size))
    assert out.shape == (2, backbone.out_features) == (2, 16)


@pytest.mark.parametrize("cls", [ResNet50, ResNeXt50, ResNet152])
@pytest.mark.parametrize("size", [(37, 50), (9, 9)])
def test_bottleneck_resnets_any_input_size_and_channels(cls, size):
    backbone = cls(in_channels=1, width_mult=0.25).eval()
    assert backbone.out_features == 512
    assert backbone(torch.randn(2, 1, *size)).shape == (2, 512)


def test_wrong_input_channels_are_a_clear_error():
    with pytest.raises(ValueError, match="IN_CHANNELS=3"):
        ResNet32(width_mult=0.25)(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        ResNet32(width_mult=0.25)(torch.randn(3, 8, 8))


def test_too_small_resnext_width_is_a_clear_error():
    with pytest.raises(ValueError, match="width"):
        ResNeXt50(width_mult=0.125)


def test_resnext_groups_from_config(model_cfg):
    assert ResNeXt50(model_cfg).layer1[0].conv2.groups == 32  # 1/64 defaults mean "unset"
    assert ResNet50(model_cfg).layer1[0].conv2.groups == 1
    model_cfg.MODEL.RESNET.GROUPS = 8
    model_cfg.MODEL.RESNET.WIDTH_PER_GROUP = 8
    for cls in (ResNeXt50, ResNet50):
        conv2 = cls(model_cfg).layer1[0].conv2
        assert conv2.groups == 8
        assert conv2.out_channels == int(16 * 8 / 64) * 8


def test_normalized_features_have_unit_norm():
    for backbone in (
        ResNet32(width_mult=0.25, normalize_features=True),
        ResNet50(width_mult=0.25, normalize_features=True),
    ):
        feats = backbone.eval()(torch.randn(3, 3, 16, 16))
        torch.testing.assert_close(feats.norm(dim=1), torch.ones(3))


def test_frozen_backbone_keeps_weights_and_bn_statistics_under_train():
    backbone = ResNet32(width_mult=0.25, freeze=True)
    assert backbone.frozen
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not any(m.training for m in backbone.modules())
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone(torch.randn(4, 3, 8, 8) * 5 + 3)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_unfrozen_backbone_updates_bn_statistics():
    # The counterpart of the test above: BN statistics do move when not frozen.
    backbone = ResNet32(width_mult=0.25).train()
    before = backbone.bn1.running_mean.clone()
    backbone(torch.randn(4, 3, 8, 8) * 5 + 3)
    assert not torch.equal(before, backbone.bn1.running_mean)


def test_kaiming_initialisation():
    conv = ResNet32().layer3[1].conv1  # 64 x 64 x 3 x 3: enough samples for a std estimate
    fan_in = conv.in_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.05)
    conv = ResNet50().layer3[0].conv2
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.05)


def test_pad_shortcut_subsamples_and_zero_pads_evenly():
    x = torch.randn(2, 3, 5, 7)
    out = PadShortcut(3, 8, stride=2)(x)
    assert out.shape == (2, 8, 3, 4)
    torch.testing.assert_close(out[:, 2:5], x[:, :, ::2, ::2])
    assert out[:, :2].abs().sum() == 0 and out[:, 5:].abs().sum() == 0
    with pytest.raises(ValueError, match="reduce channels"):
        PadShortcut(8, 4, stride=1)


def test_make_stage_widths_and_strides():
    stage = make_stage(BasicBlock, 16, 24, 3, stride=2)  # a RIDE expert's reduced stage
    assert stage.out_channels == 24 and len(stage) == 3
    assert stage[0].conv1.stride == (2, 2) and stage[1].conv1.stride == (1, 1)
    assert stage(torch.randn(1, 16, 9, 9)).shape == (1, 24, 5, 5)
    stage = make_stage(Bottleneck, 512, 192, 2, stride=2, groups=32, width_per_group=4)
    assert stage.out_channels == 768
    assert stage[0].conv2.stride == (2, 2) and stage[0].conv1.stride == (1, 1)
    with pytest.raises(ValueError, match="at least one block"):
        make_stage(BasicBlock, 16, 16, 0)
    with pytest.raises(ValueError, match="shortcut"):
        BasicBlock(16, 32, 2, shortcut="B")
