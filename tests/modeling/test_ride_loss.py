"""RIDE loss against hand computations (docs/METHODS.md section 2)."""

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
    loss = RIDELoss(
        base_loss=CrossEntropyLoss(),
        class_counts=COUNTS,
        diversity_weight=lam,
        temperature_alpha=0.05,
        temperature_base=1.0,
        temperature_epoch=2,
    )
    loss.set_epoch(epoch)
    terms = loss(logits, targets)

    # T = 1 before the DRW epoch (2), the per-class temperatures from it on.
    temps = _hand_temperatures(COUNTS, 0.05, 1.0) if epoch >= 2 else [1.0] * len(COUNTS)
    t_mean = sum(temps) / len(temps)
    z = logits.tolist()
    mean = [
        [sum(z[i][n][c] for i in range(experts)) / experts for c in range(len(COUNTS))]
        for n in range(batch)
    ]
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
    loss = RIDELoss(base_loss=base, class_counts=COUNTS, diversity_weight=0.0, temperature_epoch=0)
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
    torch.testing.assert_close(loss.temperature(), distribution_aware_temperatures(COUNTS, 0.02))
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = "RIDELoss"
    with pytest.raises(ConfigError, match="BASE_LOSS"):
        assert_cfg(cfg)
    with pytest.raises(ConfigError, match="BASE_LOSS"):
        build_loss(cfg, COUNTS)


def test_ride_loss_rejects_single_head_logits():
    with pytest.raises(ValueError, match=r"\(E, N, C\)"):
        RIDELoss(base_loss=CrossEntropyLoss())(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))


def _diversity_by_hand(expert_logits, shift, lam):
    """Each expert's lambda * KL(softmax(mean + shift) || softmax(z_i + shift)), T = 1."""
    z = expert_logits.tolist()
    experts, batch, classes = len(z), len(z[0]), len(z[0][0])
    shifted = [
        [[z[i][n][c] + shift[c] for c in range(classes)] for n in range(batch)]
        for i in range(experts)
    ]
    mean = [
        [sum(shifted[i][n][c] for i in range(experts)) / experts for c in range(classes)]
        for n in range(batch)
    ]
    return [
        lam * sum(_hand_kl(mean[n], shifted[i][n], [1.0] * classes) for n in range(batch)) / batch
        for i in range(experts)
    ]


def test_fitted_diversity_space_compares_balanced_softmax_experts_on_z_plus_log_n():
    torch.manual_seed(3)
    logits = torch.randn(3, 5, len(COUNTS), dtype=torch.float64) * 4
    targets = torch.tensor([0, 1, 2, 3, 0])
    log_n = [math.log(n) for n in COUNTS]
    for space, shift in (("fitted", log_n), ("raw", [0.0] * len(COUNTS))):
        loss = RIDELoss(
            base_loss=BalancedSoftmaxLoss(class_counts=COUNTS),
            diversity_weight=-0.45,
            diversity_space=space,
        )
        terms = loss(logits, targets)
        want = _diversity_by_hand(logits, shift, -0.45)
        got = [float(terms[f"loss_div_e{i}"]) for i in range(3)]
        assert got == pytest.approx(want, rel=1e-5), space
    # The two spaces really differ here (the prior is far from uniform).
    assert _diversity_by_hand(logits, log_n, 1.0) != pytest.approx(
        _diversity_by_hand(logits, [0.0] * 4, 1.0), rel=1e-3
    )


@pytest.mark.parametrize("base", ["LDAMLoss", "CrossEntropyLoss", "FocalLoss", "DiVELoss"])
def test_fitted_space_is_the_raw_space_for_losses_without_a_prior(base):
    # RIDE's own recipe (LDAM) and the RIDE-DiVE student (DiVE) keep RIDE's raw-logit KL.
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "RIDE"
    cfg.MODEL.LOSS.NAME = "RIDELoss"
    cfg.MODEL.LOSS.RIDE.BASE_LOSS = base
    torch.manual_seed(4)
    logits = torch.randn(4, 6, len(COUNTS)) * 5
    teacher = torch.randn(6, len(COUNTS))
    targets = torch.tensor([0, 1, 2, 3, 1, 0])
    out = {}
    for space in ("fitted", "raw"):
        cfg.MODEL.LOSS.RIDE.DIVERSITY_SPACE = space
        loss = build_loss(cfg, COUNTS)
        extra = {"teacher_logits": teacher} if loss.takes_teacher_logits else {}
        out[space] = loss(logits, targets, **extra)
    assert out["fitted"].keys() == out["raw"].keys()
    for name in out["raw"]:
        assert torch.equal(out["fitted"][name], out["raw"][name]), name


def test_balanced_softmax_fitted_logits_are_the_ones_its_loss_fits():
    loss = BalancedSoftmaxLoss(class_counts=COUNTS)
    z = torch.randn(5, len(COUNTS))
    y = torch.tensor([0, 1, 2, 3, 3])
    fitted = loss.fitted_logits(z)
    torch.testing.assert_close(fitted - z, torch.tensor(COUNTS).float().log().expand(5, -1))
    torch.testing.assert_close(loss(z, y), torch.nn.functional.cross_entropy(fitted, y))
    assert torch.equal(CrossEntropyLoss().fitted_logits(z), z)


def test_diversity_space_is_checked():
    cfg = get_cfg()
    cfg.MODEL.LOSS.RIDE.DIVERSITY_SPACE = "prior"
    with pytest.raises(ConfigError, match="DIVERSITY_SPACE"):
        assert_cfg(cfg)
    with pytest.raises(ValueError, match="DIVERSITY_SPACE"):
        RIDELoss(base_loss=CrossEntropyLoss(), diversity_space="prior")
