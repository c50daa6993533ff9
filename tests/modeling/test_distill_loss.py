"""DiVE loss against hand computations (docs/METHODS.md section 2)."""

import math

import pytest
import torch

from ride_dive.config import ConfigError, assert_cfg, get_cfg
from ride_dive.modeling import DiVELoss, RIDELoss, build_loss, dive_target
from ride_dive.modeling.losses import BalancedSoftmaxLoss

COUNTS = [60, 20, 10, 5]
STUDENT = [[1.0, -0.5, 0.3, 2.0], [0.2, 0.1, -1.0, 0.4]]
TEACHER = [[3.0, 0.5, -1.0, 1.0], [-0.3, 2.2, 0.7, 0.0]]
TARGETS = [3, 1]


def _softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def _hand_target(teacher_row, tau, p):
    """normalize(softmax(z / tau) ** p): the definition, not the softmax(p z / tau) shortcut."""
    powered = [q**p for q in _softmax([z / tau for z in teacher_row])]
    return [v / sum(powered) for v in powered]


def _hand_dive(student, teacher, targets, tau, p, alpha):
    bsce = kl = 0.0
    for z_s, z_t, y in zip(student, teacher, targets):
        prior = [z + math.log(n) for z, n in zip(z_s, COUNTS)]
        bsce -= math.log(_softmax(prior)[y])
        t = _hand_target(z_t, tau, p)
        q = _softmax([z / tau for z in z_s])  # raw student logits: no log prior here
        kl += sum(ti * (math.log(ti) - math.log(qi)) for ti, qi in zip(t, q))
    n = len(targets)
    return (1 - alpha) * bsce / n, alpha * tau * tau * kl / n


def _loss(tau=3.0, p=0.5, alpha=0.5):
    return DiVELoss(
        base_loss=BalancedSoftmaxLoss(class_counts=COUNTS), temperature=tau, power=p, alpha=alpha
    )


@pytest.mark.parametrize("p", [1.0, 0.5, 0.25])
def test_target_equals_power_normalised_softmax(p):
    got = dive_target(torch.tensor(TEACHER), 3.0, p)
    for row, teacher_row in zip(got.tolist(), TEACHER):
        assert row == pytest.approx(_hand_target(teacher_row, 3.0, p), rel=1e-5)


@pytest.mark.parametrize("tau,p,alpha", [(3.0, 0.5, 0.5), (1.0, 1.0, 0.3), (6.0, 0.5, 0.9)])
def test_dive_loss_by_hand(tau, p, alpha):
    terms = _loss(tau, p, alpha)(
        torch.tensor(STUDENT), torch.tensor(TARGETS), teacher_logits=torch.tensor(TEACHER)
    )
    cls, distill = _hand_dive(STUDENT, TEACHER, TARGETS, tau, p, alpha)
    assert set(terms) == {"loss_cls", "loss_distill"}
    assert float(terms["loss_cls"]) == pytest.approx(cls, rel=1e-5)
    assert float(terms["loss_distill"]) == pytest.approx(distill, rel=1e-5)


def test_alpha_extremes_and_matching_teacher():
    student, targets = torch.tensor(STUDENT), torch.tensor(TARGETS)
    teacher = torch.tensor(TEACHER)
    only_hard = _loss(alpha=0.0)(student, targets, teacher_logits=teacher)
    assert float(only_hard["loss_distill"]) == 0.0
    bsce = BalancedSoftmaxLoss(class_counts=COUNTS)(student, targets)
    assert float(only_hard["loss_cls"]) == pytest.approx(float(bsce))
    # A student whose tempered softmax equals the target has zero KL: with p = 1 that is
    # the teacher itself.
    same = _loss(p=1.0, alpha=1.0)(teacher, targets, teacher_logits=teacher)
    assert float(same["loss_distill"]) == pytest.approx(0.0, abs=1e-6)


def test_gradient_flows_to_the_student_only():
    student = torch.tensor(STUDENT, requires_grad=True)
    teacher = torch.tensor(TEACHER, requires_grad=True)
    terms = _loss()(student, torch.tensor(TARGETS), teacher_logits=teacher)
    sum(terms.values()).backward()
    assert student.grad is not None and teacher.grad is None


def test_missing_teacher_or_unresolved_auto_temperature_is_a_clear_error():
    student, targets = torch.tensor(STUDENT), torch.tensor(TARGETS)
    with pytest.raises(RuntimeError, match="MODEL.TEACHER.CONFIG_FILE"):
        _loss()(student, targets)
    with pytest.raises(RuntimeError, match="auto"):
        _loss(tau=None)(student, targets, teacher_logits=torch.tensor(TEACHER))
    with pytest.raises(ValueError, match="same classes"):
        _loss()(student, targets, teacher_logits=torch.zeros(2, 3))


def test_ride_loss_distils_every_expert_from_the_same_target():
    experts = torch.tensor([STUDENT, [[0.0, 1.0, 0.5, -0.5], [1.5, -0.2, 0.3, 0.1]]])
    targets, teacher = torch.tensor(TARGETS), torch.tensor(TEACHER)
    dive = _loss()
    ride = RIDELoss(base_loss=dive, class_counts=COUNTS, diversity_weight=-0.45)
    assert ride.takes_teacher_logits
    terms = ride(experts, targets, teacher_logits=teacher)
    assert set(terms) == {f"loss_{k}_e{i}" for k in ("cls", "distill", "div") for i in (0, 1)}
    for i, z in enumerate(experts):
        alone = dive(z, targets, teacher_logits=teacher)
        assert float(terms[f"loss_cls_e{i}"]) == pytest.approx(float(alone["loss_cls"]))
        assert float(terms[f"loss_distill_e{i}"]) == pytest.approx(float(alone["loss_distill"]))
    # lambda = 0: only the DiVE terms, no diversity term.
    plain = RIDELoss(base_loss=dive, class_counts=COUNTS, diversity_weight=0.0)
    assert not any(
        k.startswith("loss_div") for k in plain(experts, targets, teacher_logits=teacher)
    )


def test_built_from_config_including_auto_temperature():
    cfg = get_cfg()
    cfg.MODEL.LOSS.NAME = "DiVELoss"
    cfg.merge_from_list(["DISTILL.TEMPERATURE", "4", "DISTILL.ALPHA", "0.7"])
    loss = build_loss(cfg, COUNTS)
    assert isinstance(loss, DiVELoss) and isinstance(loss.base_loss, BalancedSoftmaxLoss)
    assert (loss.temperature, loss.power, loss.alpha) == (4.0, 0.5, 0.7)
    cfg.merge_from_list(["DISTILL.TEMPERATURE", "auto"])
    assert cfg.DISTILL.TEMPERATURE == "auto" and build_loss(cfg, COUNTS).temperature is None
    cfg.merge_from_list(["DISTILL.TEMPERATURE", "2.5"])  # and back to a number
    assert cfg.DISTILL.TEMPERATURE == 2.5


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("DISTILL.TEMPERATURE", "hot", "number or 'auto'"),
        ("DISTILL.TEMPERATURE", "-1", "DISTILL.TEMPERATURE must be > 0"),
        ("DISTILL.ALPHA", "1.5", "DISTILL.ALPHA must be in"),
        ("DISTILL.POWER", "0", "DISTILL.POWER must be > 0"),
        ("DISTILL.BASE_LOSS", "'DiVELoss'", "hard-label part"),
    ],
)
def test_bad_distill_values_are_named(key, value, message):
    cfg = get_cfg()
    with pytest.raises(ConfigError, match=message):
        cfg.merge_from_list([key, value])
        assert_cfg(cfg)


def test_auto_temperature_from_a_file_survives_dump_and_reload(tmp_path):
    path = tmp_path / "dive.yaml"
    path.write_text("MODEL:\n  LOSS:\n    NAME: DiVELoss\nDISTILL:\n  TEMPERATURE: auto\n")
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    assert cfg.DISTILL.TEMPERATURE == "auto"
    assert_cfg(cfg)
    saved = tmp_path / "config.yaml"  # what a run writes, and a pipeline reads back
    saved.write_text(cfg.dump())
    again = get_cfg()
    again.merge_from_file(str(saved))
    assert again.DISTILL.TEMPERATURE == "auto"
    again.merge_from_list(["DISTILL.TEMPERATURE", "5"])
    assert again.DISTILL.TEMPERATURE == 5.0
