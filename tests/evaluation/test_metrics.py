"""Numerical checks of the metric functions on hand-made examples."""

import math

import pytest
import torch

from ride_dive.evaluation import (
    brier,
    expected_calibration_error,
    nll,
    per_class_accuracy,
    shot_group_accuracy,
    topk_accuracy,
    topk_correct,
)


def _logits():
    # Labels sit at rank 1, 5, 6 (of 6) in the descending row, and rank 3 in the last row.
    logits = torch.tensor(
        [
            [5.0, 4, 3, 2, 1, 0],
            [5.0, 4, 3, 2, 1, 0],
            [5.0, 4, 3, 2, 1, 0],
            [0.0, 1, 2, 3, 4, 5],
        ]
    )
    labels = torch.tensor([0, 4, 5, 3])
    return logits, labels


def test_topk_correct_counts_by_rank():
    logits, labels = _logits()
    assert topk_correct(logits, labels, ks=(1, 3, 5, 6)) == {1: 1, 3: 2, 5: 3, 6: 4}


def test_topk_accuracy_percent_and_k_above_num_classes():
    logits, labels = _logits()
    assert topk_accuracy(logits, labels, ks=(1, 5)) == {1: 25.0, 5: 75.0}
    # Three classes: "top-5" is top-3, so every sample is correct.
    assert topk_correct(logits[:, :3], torch.tensor([2, 2, 1, 0]), ks=(1, 5)) == {1: 0, 5: 4}


def test_topk_rejects_bad_shapes():
    with pytest.raises(ValueError):
        topk_correct(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError):
        topk_correct(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), ks=(0,))


def test_per_class_accuracy_with_missing_class():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 0, 0, 1, 1, 0, 2])
    acc = per_class_accuracy(preds, labels, num_classes=4)
    assert acc[:3].tolist() == [75.0, 50.0, 100.0]
    assert math.isnan(acc[3])  # class 3 has no evaluation sample


def test_shot_groups_boundaries_and_nan_exclusion():
    acc = [80.0, 60.0, 40.0, 10.0, math.nan]
    counts = [101, 100, 20, 19, 5]  # 100 and 20 are both medium
    groups = shot_group_accuracy(acc, counts)
    assert groups == {"many": 80.0, "medium": 50.0, "few": 10.0}
    assert list(groups) == ["many", "medium", "few"]


def test_shot_groups_empty_group_is_omitted_not_nan():
    groups = shot_group_accuracy([70.0, 30.0, 20.0], [500, 50, 20])
    assert groups == {"many": 70.0, "medium": 25.0}
    # A group whose only class is missing from the eval set is omitted as well.
    groups = shot_group_accuracy([70.0, math.nan], [500, 3])
    assert groups == {"many": 70.0}


def test_shot_groups_custom_thresholds_and_length_check():
    groups = shot_group_accuracy(
        [90.0, 50.0, 10.0], [11, 10, 2], many_threshold=10, few_threshold=5
    )
    assert groups == {"many": 90.0, "medium": 50.0, "few": 10.0}
    with pytest.raises(ValueError):
        shot_group_accuracy([1.0, 2.0], [1, 2, 3])


def test_ece_by_hand():
    probs = torch.tensor(
        [
            [0.9, 0.1, 0.0],  # conf .9, correct
            [0.8, 0.2, 0.0],  # conf .8, wrong
            [0.6, 0.4, 0.0],  # conf .6, correct
            [0.3, 0.7, 0.0],  # conf .7, correct
            [0.5, 0.3, 0.2],  # conf .5, wrong; .5 is the right edge of bin (.25, .5]
        ]
    )
    labels = torch.tensor([0, 1, 0, 1, 1])
    # Four bins: (.75, 1] holds {.9 right, .8 wrong}, (.5, .75] holds {.6, .7 right},
    # (.25, .5] holds {.5 wrong}.
    expected = 100 * (2 / 5 * abs(0.5 - 0.85) + 2 / 5 * abs(1.0 - 0.65) + 1 / 5 * abs(0 - 0.5))
    assert expected == pytest.approx(38.0)
    assert expected_calibration_error(probs, labels, n_bins=4) == pytest.approx(expected)
    # One bin: |accuracy - mean confidence| = |0.6 - 0.7|.
    assert expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(10.0)


def test_ece_zero_when_confident_and_right():
    probs = torch.eye(3)
    assert expected_calibration_error(probs, torch.arange(3)) == 0.0
    assert math.isnan(expected_calibration_error(torch.zeros(0, 3), torch.zeros(0)))


def test_nll_and_brier_by_hand():
    assert nll(torch.zeros(2, 4), torch.tensor([0, 3])) == pytest.approx(math.log(4))
    assert brier(torch.eye(3), torch.arange(3)) == 0.0
    uniform = torch.full((2, 2), 0.5)
    assert brier(uniform, torch.tensor([0, 1])) == pytest.approx(0.5)
    # Wrong with full confidence: (1 - 0)^2 + (0 - 1)^2.
    assert brier(torch.tensor([[1.0, 0.0]]), torch.tensor([1])) == pytest.approx(2.0)
