"""Folding a frozen model's BatchNorms into its convolutions keeps its function."""

import copy

import pytest
import torch
from torch import nn

from ride_dive.config import get_cfg
from ride_dive.modeling import build_model
from ride_dive.modeling.fold_bn import fold_batch_norms
from ride_dive.modeling.teacher import FrozenTeacher


def _model(extra):
    cfg = get_cfg()
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.IN_CHANNELS", 3, "MODEL.BACKBONE.WIDTH_MULT", 0.25]
        + extra
    )
    torch.manual_seed(0)
    model = build_model(cfg, [50, 30, 20, 10, 5])
    with torch.no_grad():  # statistics and affine terms far from the identity
        for bn in model.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.3, 0.3)
    return model.eval()


RIDE = [
    "MODEL.META_ARCHITECTURE", "RIDE", "MODEL.BACKBONE.NAME", "RIDEResNet32",
    "MODEL.RIDE.NUM_EXPERTS", 3, "MODEL.HEAD.NAME", "CosineHead", "MODEL.LOSS.NAME", "RIDELoss",
]  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [
        ["MODEL.BACKBONE.NAME", "ResNet32"],
        ["MODEL.BACKBONE.NAME", "ResNeXt50"],
        RIDE,
        RIDE + ["MODEL.RIDE.BATCHED_EXPERTS", False],
    ],
    ids=["resnet32", "resnext50", "ride-batched", "ride-sequential"],
)
def test_folding_keeps_the_logits_and_removes_every_batch_norm(extra):
    model = _model(extra)
    size = 64 if "ResNeXt50" in extra else 16
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        before = model(x)
    bns = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded = copy.deepcopy(model)
    assert fold_batch_norms(folded) == bns > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        after = folded(x)
    before = before["logits"] if isinstance(before, dict) else before
    after = after["logits"] if isinstance(after, dict) else after
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_a_training_model_is_not_folded_and_undeclared_modules_are_left_alone():
    model = _model(["MODEL.BACKBONE.NAME", "ResNet32"]).train()
    with pytest.raises(RuntimeError, match="eval mode"):
        fold_batch_norms(model)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()  # declares no pairs
    assert fold_batch_norms(plain) == 0 and isinstance(plain[1], nn.BatchNorm2d)


def test_the_frozen_teacher_runs_folded_with_the_models_logits():
    model = _model(RIDE)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        reference = model(x)["logits"]
    teacher = FrozenTeacher(copy.deepcopy(model))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in teacher.modules())
    torch.testing.assert_close(teacher(x), reference, atol=1e-4, rtol=1e-4)


def test_a_projection_shortcut_is_folded_too():
    from ride_dive.modeling.backbones.blocks import BasicBlock

    torch.manual_seed(0)
    block = BasicBlock(4, 8, stride=2, shortcut="conv")
    for bn in (block.bn1, block.bn2, block.shortcut[1]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    block.eval()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        before = block(x)
        assert fold_batch_norms(block) == 3 and isinstance(block.shortcut[1], nn.Identity)
        torch.testing.assert_close(block(x), before, atol=1e-5, rtol=1e-5)
