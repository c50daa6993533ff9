"""Losses against the docs/METHODS.md formulas: BSCE, LDAM margins, DRW weights, focal."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ride_dive.config import ConfigError
from ride_dive.modeling import build_loss
from ride_dive.modeling.losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    drw_weights,
    ldam_margins,
)

COUNTS = [100, 10, 1]


def _batch(n=16, c=3):
    return torch.randn(n, c) * 3, torch.randint(0, c, (n,))


def test_balanced_softmax_is_ce_on_logits_plus_log_prior():
    logits, targets = _batch()
    expected = F.cross_entropy(logits + torch.tensor(COUNTS, dtype=torch.float).log(), targets)
    torch.testing.assert_close(BalancedSoftmaxLoss(class_counts=COUNTS)(logits, targets), expected)


def test_ldam_margins_hand_values():
    # 0.5 * n^(-1/4) / 1^(-1/4): 0.5 * [100^-0.25, 10^-0.25, 1]
    expected = [0.5 * 0.31622777, 0.5 * 0.56234133, 0.5]
    np.testing.assert_allclose(ldam_margins(COUNTS, 0.5).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(LDAMLoss(class_counts=COUNTS).margins.numpy(), expected, rtol=1e-6)


def test_ldam_subtracts_scale_times_margin_from_the_target_logit():
    loss = LDAMLoss(class_counts=COUNTS, max_margin=0.5, scale=30.0)
    # Zero logits, target 2 (margin 0.5): z' = [0, 0, -15].
    value = loss(torch.zeros(1, 3), torch.tensor([2]))
    assert value.item() == pytest.approx(15 + math.log(2 + math.exp(-15)), rel=1e-6)
    logits, targets = _batch()
    shifted = logits.clone()
    shifted[torch.arange(16), targets] -= 30.0 * loss.margins[targets]
    torch.testing.assert_close(loss(logits, targets), F.cross_entropy(shifted, targets))


def test_drw_weights_formula():
    beta = 0.9999
    raw = np.array([(1 - beta) / (1 - beta**n) for n in COUNTS])
    expected = raw / raw.sum() * len(COUNTS)
    np.testing.assert_allclose(drw_weights(COUNTS, beta).numpy(), expected, rtol=1e-6)
    assert drw_weights(COUNTS, beta).sum().item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="DRW_BETA"):
        drw_weights(COUNTS, 1.0)


def _all_losses(**drw):
    return [
        CrossEntropyLoss(class_counts=COUNTS, **drw),
        BalancedSoftmaxLoss(class_counts=COUNTS, **drw),
        LDAMLoss(class_counts=COUNTS, **drw),
        FocalLoss(class_counts=COUNTS, gamma=2.0, **drw),
    ]


@pytest.mark.parametrize("index", range(4))
def test_drw_starts_at_its_epoch_as_a_weighted_mean(index):
    loss = _all_losses(drw_epoch=3)[index]
    logits, targets = _batch()
    per_sample = torch.stack([loss(logits[i : i + 1], targets[i : i + 1]) for i in range(16)])
    loss.set_epoch(2)
    assert not loss.drw_active
    torch.testing.assert_close(loss(logits, targets), per_sample.mean())
    loss.set_epoch(3)
    assert loss.drw_active
    w = drw_weights(COUNTS, 0.9999)[targets]
    torch.testing.assert_close(loss(logits, targets), (w * per_sample).sum() / w.sum())


def test_drw_off_by_default_at_every_epoch():
    loss = CrossEntropyLoss(class_counts=COUNTS)
    loss.set_epoch(10_000)
    logits, targets = _batch()
    torch.testing.assert_close(loss(logits, targets), F.cross_entropy(logits, targets))


def test_focal_gamma_zero_is_ce_and_gamma_two_matches_hand_value():
    logits, targets = _batch()
    ce = F.cross_entropy(logits, targets)
    torch.testing.assert_close(FocalLoss(gamma=0.0)(logits, targets), ce)
    # logits [2, 0, 0], target 0: p = e^2 / (e^2 + 2); loss = (1 - p)^2 * -log p.
    p = math.exp(2) / (math.exp(2) + 2)
    value = FocalLoss(gamma=2.0)(torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0]))
    assert value.item() == pytest.approx((1 - p) ** 2 * -math.log(p), rel=1e-6)


def test_losses_compute_in_float32_and_backpropagate():
    for loss in _all_losses(drw_epoch=0):
        logits = (torch.randn(8, 3) * 3).bfloat16().requires_grad_()
        value = loss(logits, torch.randint(0, 3, (8,)))
        assert value.dtype == torch.float32 and value.dim() == 0
        value.backward()
        assert torch.isfinite(logits.grad.float()).all()


def test_count_buffers_are_not_saved():
    for loss in _all_losses(drw_epoch=0):
        assert loss.state_dict() == {}
        assert loss.drw_class_weights is not None


def test_losses_from_config(model_cfg):
    model_cfg.MODEL.LOSS.NAME = "LDAMLoss"
    model_cfg.MODEL.LOSS.LDAM_MAX_MARGIN = 0.3
    model_cfg.MODEL.LOSS.LDAM_SCALE = 16.0
    model_cfg.MODEL.LOSS.DRW_EPOCH = 160
    loss = build_loss(model_cfg, COUNTS)
    assert loss.scale == 16.0 and loss.drw_epoch == 160
    assert loss.margins.max().item() == pytest.approx(0.3)
    model_cfg.MODEL.LOSS.NAME = "FocalLoss"
    model_cfg.MODEL.LOSS.FOCAL_GAMMA = 2.0
    assert build_loss(model_cfg, COUNTS).gamma == 2.0


def test_bad_loss_inputs_are_clear_errors():
    # A config error (exit 2, no traceback in the tools) naming the empty class and the keys.
    with pytest.raises(ConfigError, match=r"none of classes \[1\].*MAX_PER_CLASS"):
        BalancedSoftmaxLoss(class_counts=[5, 0, 2])
    with pytest.raises(ValueError, match="class counts"):
        BalancedSoftmaxLoss(class_counts=None)
    with pytest.raises(ValueError, match="DRW"):
        CrossEntropyLoss(drw_epoch=0)
    loss = CrossEntropyLoss(class_counts=COUNTS)
    with pytest.raises(ValueError, match="4 classes"):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="targets"):
        loss(torch.randn(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="integers"):
        loss(torch.randn(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="FOCAL_GAMMA"):
        FocalLoss(gamma=-1.0)
