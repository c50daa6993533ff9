"""RIDE loss against hand computations (METHODS.md section 2)."""
import math

import pytest
import torch

from ride_dive.config import ConfigError, assert_cfg, get_cfg
from ride_dive.modeling import RIDELoss, build_loss, distribution_aware_temperatures
from ride_dive.modeling.losses import BalancedSoftmaxLoss, CrossEntropyLoss

COUNTS = [60, 20, 10, 5]


def _hand_temperatures(counts, alpha, base):
    total, classes = sum(counts), len(counts)
    raw = [alpha * classes * n / total + 1 - alpha for n in counts]
    return [base * r / max(raw) for r in raw]


def _hand_softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def _hand_kl(target_logits, expert_logits, temps):
    """KL(softmax(target / T) || softmax(expert / T)) of one sample, per-class T."""
    p = _hand_softmax([z / t for z, t in zip(target_logits, temps)])
    q = _hand_softmax([z / t for z, t in zip(expert_logits, temps)])
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))


def _hand_ce(logits, target):
    return -math.log(_hand_softmax(logits)[target])


def test_distribution_aware_temperatures_by_hand():
    got = distribution_aware_temperatures(COUNTS, alpha=0.05, base=1.5)
    assert got.tolist() == pytest.approx(_hand_temperatures(COUNTS, 0.05, 1.5), rel=1e-6)
    assert float(got[0]) == pytest.approx(1.5)  # the head class keeps T_base
    assert distribution_aware_temperatures(COUNTS, alpha=0.0).tolist() == [1.0] * 4


@pytest.mark.parametrize("epoch", [0, 3])
def test_ride_loss_terms_by_hand(epoch):
    torch.manual_seed(1)
    experts, batch, lam = 3, 5, -0.45
    logits = torch.randn(experts, batch, len(COUNTS), dtype=torch.float64) * 3
    targets = torch.tensor([0, 1, 2, 3, 0])
    loss = RIDELoss(base_loss=CrossEntropyLoss(), class_counts=COUNTS, diversity_weight=lam,
                    temperature_alpha=0.05, temperature_base=1.0, temperature_epoch=2)
    loss.set_epoch(epoch)
    terms = loss(logits, targets)

    # T = 1 before the DRW epoch (2), the per-class temperatures from it on.
    temps = _hand_temperatures(COUNTS, 0.05, 1.0) if epoch >= 2 else [1.0] * len(COUNTS)
    t_mean = sum(temps) / len(temps)
    z = logits.tolist()
    mean = [[sum(z[i][n][c] for i in range(experts)) / experts for c in range(len(COUNTS))]
            for n in range(batch)]
    for i in range(experts):
        base = sum(_hand_ce(z[i][n], int(targets[n])) for n in range(batch)) / batch
        kl = sum(_hand_kl(mean[n], z[i][n], temps) for n in range(batch)) / batch
        assert float(terms[f"loss_base_e{i}"]) == pytest.approx(base, rel=1e-5)
        assert float(terms[f"loss_div_e{i}"]) == pytest.approx(lam * t_mean**2 * kl, rel=1e-4)
    assert len(terms) == 2 * experts


def test_zero_lambda_removes_the_diversity_term_exactly():
    logits = torch.randn(4, 6, len(COUNTS))
    targets = torch.tensor([0, 1, 2, 3, 1, 0])
    base = BalancedSoftmaxLoss(class_counts=COUNTS)
    loss = RIDELoss(base_loss=base, class_counts=COUNTS, diversity_weight=0.0,
                    temperature_epoch=0)
    terms = loss(logits, targets)
    assert sorted(terms) == [f"loss_base_e{i}" for i in range(4)]
    total = sum(terms.values())
    assert torch.equal(total, sum(base(z, targets) for z in logits))


def test_ensemble_target_is_detached():
    logits = torch.randn(2, 4, len(COUNTS), requires_grad=True)
    loss = RIDELoss(base_loss=CrossEntropyLoss(), diversity_weight=-1.0)
    loss(logits, torch.tensor([0, 1, 2, 3]))["loss_div_e0"].backward()
    assert logits.grad[0].abs().sum() > 0
    assert torch.equal(logits.grad[1], torch.zeros_like(logits.grad[1]))


def test_ride_loss_from_config_drives_its_base_loss():
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "RIDE"
    cfg.MODEL.LOSS.NAME = "RIDELoss"
    cfg.MODEL.LOSS.DRW_EPOCH = 2
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = "LDAMLoss"
    cfg.MODEL.LOSS.RIDE.TEMPERATURE_ALPHA = 0.02
    loss = build_loss(cfg, COUNTS)
    assert type(loss.base_loss).__name__ == "LDAMLoss"
    assert loss.temperature().numel() == 1
    loss.set_epoch(2)
    assert loss.base_loss.drw_active
    torch.testing.assert_close(loss.temperature(),
                               distribution_aware_temperatures(COUNTS, 0.02))
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = "RIDELoss"
    with pytest.raises(ConfigError, match="BASE_LOSS"):
        assert_cfg(cfg)
    with pytest.raises(ConfigError, match="BASE_LOSS"):
        build_loss(cfg, COUNTS)


def test_ride_loss_rejects_single_head_logits():
    with pytest.raises(ValueError, match=r"\(E, N, C\)"):
        RIDELoss(base_loss=CrossEntropyLoss())(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
