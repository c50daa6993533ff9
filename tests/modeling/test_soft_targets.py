"""Losses on soft (MixUp/CutMix) targets: the definition, and one-hot equals hard labels."""

import pytest
import torch
import torch.nn.functional as F

from ride_dive.config import ConfigError, get_cfg
from ride_dive.modeling import build_loss, check_soft_targets
from ride_dive.modeling.losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
)

COUNTS = [50, 20, 8, 2]
torch.manual_seed(0)
LOGITS = torch.randn(6, 4)
LABELS = torch.tensor([0, 1, 2, 3, 0, 2])

LOSSES = {
    "ce": lambda drw: CrossEntropyLoss(class_counts=COUNTS, drw_epoch=drw),
    "bsce": lambda drw: BalancedSoftmaxLoss(class_counts=COUNTS, drw_epoch=drw),
    "la": lambda drw: LogitAdjustedLoss(class_counts=COUNTS, tau=0.7, drw_epoch=drw),
    "focal": lambda drw: FocalLoss(class_counts=COUNTS, gamma=2.0, drw_epoch=drw),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("drw", [-1, 0])
def test_one_hot_targets_give_the_hard_label_loss_and_gradient(name, drw):
    loss = LOSSES[name](drw)
    z1, z2 = LOGITS.clone().requires_grad_(), LOGITS.clone().requires_grad_()
    hard = loss(z1, LABELS)
    soft = loss(z2, F.one_hot(LABELS, 4).float())
    hard.backward()
    soft.backward()
    assert soft.item() == pytest.approx(hard.item(), rel=1e-6)
    assert torch.allclose(z1.grad, z2.grad, atol=1e-7)


def test_soft_cross_entropy_by_hand_with_and_without_class_weights():
    t = torch.softmax(torch.randn(6, 4), dim=1)  # rows sum to 1
    log_p = F.log_softmax(LOGITS + torch.tensor(COUNTS).float().log(), dim=1)
    per_image = -(t * log_p).sum(1)
    assert BalancedSoftmaxLoss(class_counts=COUNTS)(LOGITS, t).item() == pytest.approx(
        per_image.mean().item(), rel=1e-6
    )
    weighted = BalancedSoftmaxLoss(class_counts=COUNTS, drw_epoch=0)
    w = weighted.drw_class_weights
    want = (-(t * log_p) * w).sum() / (t * w).sum()
    assert weighted(LOGITS, t).item() == pytest.approx(want.item(), rel=1e-6)


def test_a_mixed_pair_is_the_lambda_mix_of_the_two_hard_losses():
    # Cross-entropy is linear in the target: t = 0.3 e_a + 0.7 e_b.
    loss = CrossEntropyLoss()
    a, b = torch.tensor([1, 1, 0, 0, 3, 2]), LABELS
    t = 0.3 * F.one_hot(a, 4).float() + 0.7 * F.one_hot(b, 4).float()
    want = 0.3 * loss(LOGITS, a) + 0.7 * loss(LOGITS, b)
    assert loss(LOGITS, t).item() == pytest.approx(want.item(), rel=1e-6)


def test_ldam_refuses_soft_targets_and_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="LDAMLoss takes class indices"):
        LDAMLoss(class_counts=COUNTS)(LOGITS, F.one_hot(LABELS, 4).float())
    with pytest.raises(ValueError, match="soft targets must be"):
        CrossEntropyLoss()(LOGITS, torch.ones(6, 3) / 3)


def test_check_soft_targets_names_what_cannot_take_them():
    cfg = get_cfg()
    cfg.MODEL.LOSS.NAME = "RIDELoss"
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = "LDAMLoss"
    with pytest.raises(ConfigError, match=r"LDAMLoss \(its margin belongs to the one true"):
        check_soft_targets(build_loss(cfg, COUNTS))
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = "BalancedSoftmaxLoss"
    check_soft_targets(build_loss(cfg, COUNTS))  # no error
