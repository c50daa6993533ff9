"""Logit-adjusted loss (Menon et al. 2021) against its definition and Balanced Softmax."""

import math

import pytest
import torch

from ride_dive.config import get_cfg
from ride_dive.modeling import build_loss
from ride_dive.modeling.losses import BalancedSoftmaxLoss, CrossEntropyLoss, LogitAdjustedLoss

COUNTS = [60, 20, 10, 5]
LOGITS = [[1.0, -0.5, 0.3, 2.0], [0.2, 0.1, -1.0, 0.4], [-1.2, 0.8, 0.0, 0.1]]
TARGETS = [3, 1, 0]


def _hand(tau):
    """mean over the batch of -log softmax(z + tau * log(n / N))_y, in plain Python."""
    total = sum(COUNTS)
    loss = 0.0
    for row, y in zip(LOGITS, TARGETS):
        adjusted = [z + tau * math.log(n / total) for z, n in zip(row, COUNTS)]
        top = max(adjusted)
        log_norm = top + math.log(sum(math.exp(a - top) for a in adjusted))
        loss += log_norm - adjusted[y]
    return loss / len(TARGETS)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.7])
def test_loss_by_hand(tau):
    got = LogitAdjustedLoss(class_counts=COUNTS, tau=tau)(
        torch.tensor(LOGITS), torch.tensor(TARGETS)
    )
    assert got.item() == pytest.approx(_hand(tau), rel=1e-6)


@pytest.mark.parametrize("drw_epoch", [-1, 0])
def test_tau_one_is_balanced_softmax_values_and_gradients(drw_epoch):
    z1 = torch.tensor(LOGITS, requires_grad=True)
    z2 = torch.tensor(LOGITS, requires_grad=True)
    la = LogitAdjustedLoss(class_counts=COUNTS, tau=1.0, drw_epoch=drw_epoch)
    bs = BalancedSoftmaxLoss(class_counts=COUNTS, drw_epoch=drw_epoch)
    a, b = la(z1, torch.tensor(TARGETS)), bs(z2, torch.tensor(TARGETS))
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), abs=1e-6)
    assert torch.allclose(z1.grad, z2.grad, atol=1e-7)
    assert la.estimates_balanced_posterior and bs.estimates_balanced_posterior


def test_tau_zero_is_cross_entropy_and_not_balanced():
    la = LogitAdjustedLoss(class_counts=COUNTS, tau=0.0)
    ce = CrossEntropyLoss(class_counts=COUNTS)
    z, y = torch.tensor(LOGITS), torch.tensor(TARGETS)
    assert la(z, y).item() == pytest.approx(ce(z, y).item(), abs=1e-7)
    assert not la.estimates_balanced_posterior
    assert not LogitAdjustedLoss(class_counts=COUNTS, tau=0.5).estimates_balanced_posterior


def test_fitted_logits_add_tau_log_prior():
    la = LogitAdjustedLoss(class_counts=COUNTS, tau=0.5)
    z = torch.tensor(LOGITS)
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    assert torch.allclose(la.fitted_logits(z), z + 0.5 * prior.log().float())


@pytest.mark.parametrize("tau", [-0.1, float("nan")])
def test_bad_tau_is_refused(tau):
    with pytest.raises(ValueError, match="LA_TAU"):
        LogitAdjustedLoss(class_counts=COUNTS, tau=tau)


def test_built_from_config_as_loss_ride_base_and_dive_hard_label_loss():
    cfg = get_cfg()
    cfg.MODEL.LOSS.NAME = "LogitAdjustedLoss"
    cfg.MODEL.LOSS.LA_TAU = 0.75
    loss = build_loss(cfg, COUNTS)
    assert isinstance(loss, LogitAdjustedLoss) and loss.tau == 0.75
    cfg.MODEL.LOSS.NAME = "RIDELoss"
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = "LogitAdjustedLoss"
    ride = build_loss(cfg, COUNTS)
    assert isinstance(ride.base_loss, LogitAdjustedLoss) and ride.base_loss.tau == 0.75
    cfg.MODEL.LOSS.NAME = "DiVELoss"
    cfg.DISTILL.BASE_LOSS = "LogitAdjustedLoss"
    dive = build_loss(cfg, COUNTS)
    assert isinstance(dive.base_loss, LogitAdjustedLoss) and dive.base_loss.tau == 0.75


def test_the_prior_is_added_in_float32_under_bf16_logits():
    """bf16 logits (a bf16-autocast head) get the log prior in float32: a bf16 log n would
    be rounded by up to 0.016, a per-class bias; so tau = 1 equals Balanced Softmax to float32
    rounding in bf16 training too."""
    counts = [1000, 733, 311, 97, 10]
    logits = torch.randn(6, 5).bfloat16()
    targets = torch.tensor([0, 1, 2, 3, 4, 4])
    bsce = BalancedSoftmaxLoss(class_counts=counts)
    la = LogitAdjustedLoss(class_counts=counts, tau=1.0)
    assert bsce.fitted_logits(logits).dtype == torch.float32
    exact = torch.nn.functional.cross_entropy(
        logits.float() + torch.tensor(counts, dtype=torch.float64).log().float(), targets
    )
    assert torch.equal(bsce(logits, targets), exact)
    torch.testing.assert_close(la(logits, targets), exact, rtol=0, atol=1e-6)
