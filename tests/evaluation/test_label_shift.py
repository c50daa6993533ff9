"""Label-shift evaluation (docs/METHODS.md 7): shifted counts, subsets, PC, the table; and the
reliability bins behind the calibration figure."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ride_dive.config import get_cfg
from ride_dive.evaluation import (
    ClassificationEvaluator,
    expected_calibration_error,
    inference_on_dataset,
    label_shift_report,
    label_shift_rows,
    post_compensate,
    reliability_bins,
    shifted_class_counts,
    shifted_indices,
    trained_with_prior_logits,
)
from ride_dive.evaluation.label_shift import class_ranks
from ride_dive.modeling import build_model

# Classes 1 and 3 tie on 50 training images: class 1 (lower index) ranks first.
TRAIN = [5, 50, 20, 50]
TEST = [10, 12, 10, 11]  # n_test = min = 10


def test_ranks_head_first_ties_by_class_index():
    assert class_ranks(TRAIN) == [3, 0, 2, 1]


def test_forward_backward_uniform_counts_by_hand():
    # rho = 8, C - 1 = 3: (1/8)^(r/3) = 1, 1/2, 1/4, 1/8 -> 10, 5, 2.5, 1.25 -> floor.
    # By rank: class 1 -> 10, class 3 -> 5, class 2 -> 2, class 0 -> 1.
    assert shifted_class_counts(TRAIN, TEST, "forward", 8) == [1, 10, 2, 5]
    # Backward: rank r gets the count of rank C - 1 - r.
    assert shifted_class_counts(TRAIN, TEST, "backward", 8) == [10, 1, 5, 2]
    assert shifted_class_counts(TRAIN, TEST, "uniform") == [10, 10, 10, 10]
    assert shifted_class_counts(TRAIN, TEST, "forward", 1) == [10, 10, 10, 10]
    # C = 3, rho = 2: 10 * 2^(-1/2) = 7.07 -> 7 (floor, not round), 10 / 2 = 5.
    assert shifted_class_counts([9, 3, 1], [10] * 3, "forward", 2) == [10, 7, 5]
    assert shifted_class_counts([9, 3, 1], [10] * 3, "backward", 2) == [5, 7, 10]


def test_fashion_mnist_shape_keeps_exact_integer_ends():
    train = [1000 * 100 ** (-c / 9) for c in range(10)]
    counts = shifted_class_counts(train, [1000] * 10, "forward", 50)
    # 1000 / 50 is exactly 20 (float error must not turn it into 19).
    assert counts[0] == 1000 and counts[-1] == 20
    expected = [math.floor(1000 * (1 / 50) ** (r / 9) + 1e-9) for r in range(10)]
    assert counts == expected
    assert shifted_class_counts(train, [1000] * 10, "backward", 50) == expected[::-1]


def test_bad_protocol_arguments():
    with pytest.raises(ValueError, match="protocol"):
        shifted_class_counts(TRAIN, TEST, "sideways", 2)
    with pytest.raises(ValueError, match="rho"):
        shifted_class_counts(TRAIN, TEST, "forward", 0.5)
    with pytest.raises(ValueError, match="classes"):
        shifted_class_counts(TRAIN, TEST[:3], "forward", 2)


def test_subset_takes_the_first_images_of_each_class_in_file_order():
    labels = torch.tensor([2, 0, 1, 2, 0, 0, 1, 2, 2, 1])
    # class 0 at 1, 4, 5 -> 1, 4; class 1 at 2, 6, 9 -> 2; class 2 at 0, 3, 7, 8 -> 0, 3, 7.
    assert shifted_indices(labels, [2, 1, 3]).tolist() == [0, 1, 2, 3, 4, 7]
    assert shifted_indices(labels, [0, 3, 0]).tolist() == [2, 6, 9]
    with pytest.raises(ValueError, match="class 0 has 3"):
        shifted_indices(labels, [4, 1, 1])


def test_pc_by_hand_with_and_without_prior_training():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    train, target = [6, 3, 1], [1, 1, 2]  # p_train .6 .3 .1, p_target .25 .25 .5
    ce = post_compensate(logits, target, train, trained_with_prior=False)
    expected = [1 + math.log(0.25 / 0.6), 2 + math.log(0.25 / 0.3), 3 + math.log(0.5 / 0.1)]
    assert ce[0].tolist() == pytest.approx(expected, abs=1e-6)
    balanced = post_compensate(logits, target, train, trained_with_prior=True)
    assert balanced[0].tolist() == pytest.approx(
        [1 + math.log(0.25), 2 + math.log(0.25), 3 + math.log(0.5)], abs=1e-6
    )
    # A class absent from the target cannot be predicted.
    assert post_compensate(logits, [1, 1, 0], train, True)[0, 2] == -math.inf


def test_pc_moves_a_ce_model_to_the_head_under_forward_shift():
    # Evidence favours class 1; the CE logits add log p_train (counts 4:2:1) and pick it.
    train = [4, 2, 1]
    evidence = torch.tensor([[0.0, 1.0, 0.0]])
    ce_logits = evidence + torch.tensor(train, dtype=torch.float).div(7).log()
    assert ce_logits.argmax().item() == 1
    # Forward-50 over 100 test images per class keeps 100, 14, 2: far more head-heavy than
    # the training prior, so PC (log p_target - log p_train) must now pick the head class.
    target = shifted_class_counts(train, [100] * 3, "forward", 50)
    assert target == [100, 14, 2]
    assert post_compensate(ce_logits, target, train, False).argmax().item() == 0
    # Backward-50 goes the other way: the tail class.
    target = shifted_class_counts(train, [100] * 3, "backward", 50)
    assert post_compensate(ce_logits, target, train, False).argmax().item() == 2


def _bayes_problem(balanced_logits: bool):
    """1-D Gaussians (unit variance, means 0, 1.5, 3) with 300 test points per class, in a
    shuffled file order; logits are the exact log-likelihood (+ log p_train for CE)."""
    gen = torch.Generator().manual_seed(0)
    train = [90, 30, 10]  # imbalance 9: Forward-50 is far more skewed than training
    labels = torch.arange(3).repeat(300)[torch.randperm(900, generator=gen)]
    means = torch.tensor([0.0, 1.5, 3.0])
    x = means[labels] + torch.randn(900, generator=gen)
    logits = -0.5 * (x[:, None] - means[None, :]) ** 2
    if not balanced_logits:
        logits = logits + torch.tensor(train, dtype=torch.float).log()
    return logits, labels, train


@pytest.mark.parametrize("balanced", [False, True])
def test_pc_is_bayes_optimal_under_shift(balanced):
    logits, labels, train = _bayes_problem(balanced)
    rows = label_shift_rows(logits, labels, train, trained_with_prior=balanced)
    assert [(r["protocol"], r["rho"], r["pc"]) for r in rows[:4]] == [
        ("forward", 50.0, False),
        ("forward", 50.0, True),
        ("forward", 25.0, False),
        ("forward", 25.0, True),
    ]
    assert len(rows) == 22 and rows[10]["protocol"] == "uniform"
    assert rows[-1]["protocol"] == "backward" and rows[-1]["rho"] == 50.0
    by = {(r["protocol"], r["rho"], r["pc"]): r for r in rows}
    for protocol in ("forward", "backward"):
        raw, pc = by[(protocol, 50.0, False)], by[(protocol, 50.0, True)]
        assert raw["n"] == pc["n"] == 300 + 42 + 6
        # With the true likelihoods, PC gives the Bayes classifier of the shifted set.
        assert pc["top1"] > raw["top1"]
    uniform_raw, uniform_pc = by[("uniform", 1.0, False)], by[("uniform", 1.0, True)]
    assert uniform_raw["n"] == 900
    assert uniform_raw["top1"] == pytest.approx(
        100.0 * (logits.argmax(1) == labels).float().mean().item()
    )
    if balanced:  # + log(1/C) changes nothing
        assert uniform_pc["top1"] == uniform_raw["top1"]
    else:  # logit adjustment: the balanced set gains from removing the training prior
        assert uniform_pc["top1"] > uniform_raw["top1"]


def test_report_and_evaluator_option_agree():
    logits, labels, train = _bayes_problem(False)
    report = label_shift_report(logits, labels, train, False)
    assert report["n_test_per_class"] == 300 and report["rhos"] == [50, 25, 10, 5, 2]
    evaluator = ClassificationEvaluator(train, label_shift=True, trained_with_prior=False)
    evaluator.process(logits, labels)
    results = evaluator.evaluate()
    assert results["label_shift"] == report
    plain = ClassificationEvaluator(train)
    plain.process(logits, labels)
    assert "label_shift" not in plain.evaluate()
    with pytest.raises(ValueError, match="training class counts"):
        ClassificationEvaluator(None, label_shift=True)


def test_inference_on_dataset_passes_the_option_through():
    logits, labels, train = _bayes_problem(True)
    loader = DataLoader(TensorDataset(logits, labels), batch_size=128)
    results = inference_on_dataset(
        nn.Identity(), loader, train, "cpu", label_shift=True, trained_with_prior=True
    )
    assert results["label_shift"] == label_shift_report(logits, labels, train, True)
    assert "label_shift" not in inference_on_dataset(nn.Identity(), loader, train, "cpu")


def _model(cfg, counts=(50, 20, 5, 5)):
    """A tiny model of ``cfg`` (width 1/8) for the capability checks."""
    cfg.MODEL.BACKBONE.WIDTH_MULT = 0.125
    if cfg.MODEL.LOSS.NAME == "RIDELoss":
        cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.BACKBONE.NAME = "RIDE", "RIDEResNet32"
        cfg.MODEL.RIDE.NUM_EXPERTS = 2
    return build_model(cfg, list(counts))


def test_from_config_reads_test_label_shift():
    cfg = get_cfg()
    assert cfg.TEST.LABEL_SHIFT is False
    cfg.TEST.LABEL_SHIFT = True
    cfg.MODEL.LOSS.NAME = "BalancedSoftmaxLoss"
    evaluator = ClassificationEvaluator(cfg, train_counts=[3, 1], model=_model(cfg, (3, 1)))
    assert evaluator.label_shift and evaluator.trained_with_prior
    with pytest.raises(ValueError, match="pass the model"):
        ClassificationEvaluator(cfg, train_counts=[3, 1])


@pytest.mark.parametrize(
    "loss, ride_base, sampler, expected",
    [
        ("CrossEntropyLoss", "LDAMLoss", "InstanceBalancedSampler", False),
        ("BalancedSoftmaxLoss", "LDAMLoss", "InstanceBalancedSampler", True),
        ("DiVELoss", "LDAMLoss", "InstanceBalancedSampler", True),
        ("RIDELoss", "BalancedSoftmaxLoss", "InstanceBalancedSampler", True),
        ("RIDELoss", "DiVELoss", "InstanceBalancedSampler", True),
        ("RIDELoss", "LDAMLoss", "InstanceBalancedSampler", False),
        ("CrossEntropyLoss", "LDAMLoss", "ClassAwareSampler", True),  # cRT / LWS
        ("CrossEntropyLoss", "LDAMLoss", "SquareRootSampler", False),
    ],
)
def test_which_models_count_as_prior_trained(loss, ride_base, sampler, expected):
    cfg = get_cfg()
    cfg.MODEL.LOSS.NAME, cfg.MODEL.LOSS.RIDE.BASE_LOSS = loss, ride_base
    cfg.DATALOADER.SAMPLER = sampler
    # Decided from what the built components declare, not from the config's names.
    assert trained_with_prior_logits(cfg, _model(cfg)) is expected


def test_ncm_and_tau_norm_heads_count_as_balanced():
    cfg = get_cfg()
    assert trained_with_prior_logits(cfg, _model(cfg)) is False  # CE, linear head
    cfg.MODEL.HEAD.NAME = "NCMHead"
    assert trained_with_prior_logits(cfg, _model(cfg)) is True
    cfg.MODEL.HEAD.NAME, cfg.MODEL.HEAD.TAU_NORM = "LinearHead", 0.6
    model = _model(cfg)
    assert trained_with_prior_logits(cfg, model) is True
    model.head.tau = -1.0  # the capability follows the head's state
    assert trained_with_prior_logits(cfg, model) is False


def test_a_new_component_declares_prior_free_logits():
    class PriorFreeHead(nn.Linear):
        estimates_balanced_posterior = True

    cfg = get_cfg()
    model = _model(cfg)
    assert trained_with_prior_logits(cfg, model) is False
    model.head = PriorFreeHead(4, 4)
    assert trained_with_prior_logits(cfg, model) is True


def test_reliability_bins_by_hand_and_against_the_ece():
    probs = torch.tensor(
        [
            [0.9, 0.1, 0.0],  # conf .9, correct
            [0.8, 0.2, 0.0],  # conf .8, wrong
            [0.6, 0.4, 0.0],  # conf .6, correct
            [0.3, 0.7, 0.0],  # conf .7, correct
            [0.5, 0.3, 0.2],  # conf .5 (right edge of (.25, .5]), wrong
        ]
    )
    labels = torch.tensor([0, 1, 0, 1, 1])
    bins = reliability_bins(probs, labels, n_bins=4)
    assert bins["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert bins["count"] == [0, 1, 2, 2]
    assert bins["confidence"][0] is None and bins["accuracy"][0] is None
    assert bins["confidence"][1:] == pytest.approx([0.5, 0.65, 0.85])
    assert bins["accuracy"][1:] == pytest.approx([0.0, 1.0, 0.5])
    # The ECE is the count-weighted gap of these bins, on random data too.
    gen = torch.Generator().manual_seed(1)
    probs = torch.randn(500, 7, generator=gen).mul(2).softmax(dim=1)
    labels = torch.randint(0, 7, (500,), generator=gen)
    bins = reliability_bins(probs, labels, n_bins=15)
    assert sum(bins["count"]) == 500
    gap = sum(
        n / 500 * abs(a - c)
        for n, a, c in zip(bins["count"], bins["accuracy"], bins["confidence"])
        if n
    )
    assert 100 * gap == pytest.approx(expected_calibration_error(probs, labels, 15))


def test_a_test_split_lacking_classes_is_refused_with_the_classes_named():
    from ride_dive.data.errors import DatasetError
    from ride_dive.evaluation.label_shift import (
        check_label_shift_test_counts,
        format_label_shift_table,
    )

    with pytest.raises(DatasetError) as info:
        check_label_shift_test_counts([5, 0, 3, 0])
    message = str(info.value)
    assert "none of 2 of its 4 classes (1, 3)" in message and "DATASETS.TEST_LIST" in message
    with pytest.raises(DatasetError, match=r"none of 12 of its 13 classes \(1, 2, .*10, \.\.\.\)"):
        check_label_shift_test_counts([1] + [0] * 12)
    # Enough images of every class: nothing to say; fewer than the largest rho: a warning.
    assert check_label_shift_test_counts([50, 60], rhos=(50, 2)) is None
    warning = check_label_shift_test_counts([7, 60], rhos=(50, 2))
    assert "only 7 image(s) of its rarest class" in warning and "rho > 7" in warning
    # The rows refuse too (the LADE grid would be empty), instead of a bare ValueError.
    logits, labels = torch.zeros(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(DatasetError, match=r"classes \(2\)"):
        label_shift_report(logits, labels, [4, 2, 1], False)
    report = label_shift_report(torch.zeros(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]), [4, 2, 1], 0)
    assert "rho > 2" in report["warning"] and "Note: label shift" in format_label_shift_table(
        report
    )
