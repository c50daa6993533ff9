"""Parameter and MAC counting."""

import pytest
import torch

from ride_dive.modeling import build_model, count_macs, count_parameters
from ride_dive.modeling.backbones import ResNet32


def test_resnet32_macs_at_32x32(model_cfg):
    model_cfg.MODEL.BACKBONE.WIDTH_MULT = 1.0
    model_cfg.MODEL.NUM_CLASSES = 100
    model = build_model(model_cfg)
    assert abs(count_parameters(model) - 0.47e6) / 0.47e6 < 0.03
    gmacs = count_macs(model, (3, 32, 32))
    assert abs(gmacs - 0.069) / 0.069 < 0.03
    assert model.training  # the mode is restored


def test_macs_are_per_image_and_scale_with_resolution():
    backbone = ResNet32(width_mult=0.25)
    one = count_macs(backbone, (3, 16, 16))
    assert count_macs(backbone, (4, 3, 16, 16)) == pytest.approx(one)
    # Every layer is a convolution over a map whose area scales with the input.
    assert count_macs(backbone, (3, 32, 32)) == pytest.approx(4 * one, rel=0.01)


def test_trainable_parameter_count():
    backbone = ResNet32(width_mult=0.25)
    total = count_parameters(backbone)
    assert total == sum(p.numel() for p in backbone.parameters())
    backbone.freeze()
    assert count_parameters(backbone, trainable_only=True) == 0
    assert count_parameters(backbone) == total


def test_bad_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(ResNet32(width_mult=0.25), (32, 32))
    assert isinstance(count_macs(torch.nn.Conv2d(1, 2, 3), (1, 5, 5)), float)
