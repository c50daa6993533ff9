"""Classification metrics as pure tensor functions (no model, no I/O).

Accuracies are returned in percent (0..100), and so is the expected calibration error, so
every number in a results table shares one scale. Inputs may live on any device; results
are Python numbers or CPU tensors.
"""

import math
from typing import Dict, Iterable, Sequence, Union

import torch
import torch.nn.functional as F

from ..utils.shot_groups import shot_group_accuracy  # noqa: F401  (part of this API)

ArrayLike = Union[torch.Tensor, Sequence[float]]


def topk_correct(
    logits: torch.Tensor, labels: torch.Tensor, ks: Iterable[int] = (1, 5)
) -> Dict[int, int]:
    """Count the samples whose label is among the ``k`` highest logits, for each ``k``.

    Args:
        logits: ``[N, C]`` scores.
        labels: ``[N]`` integer labels in ``[0, C)``.
        ks: the ``k`` values. A ``k`` larger than ``C`` counts as ``C`` (every sample is then
            correct), so top-5 on a 3-class problem is top-3.

    Returns:
        ``{k: number of correct samples}`` with the keys as requested. Ties between equal
        logits are broken by ``torch.topk``'s order.
    """
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {ks}")
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits [N, C] and labels [N], got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    num_classes = logits.shape[1]
    max_k = min(max(ks), num_classes)
    top = logits.topk(max_k, dim=1).indices
    hits = top.eq(labels.view(-1, 1))
    # Cumulative "label seen within the first j predictions" answers every k at once.
    seen = hits.cumsum(dim=1).clamp_(max=1)
    return {k: int(seen[:, min(k, num_classes) - 1].sum()) for k in ks}


def topk_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, ks: Iterable[int] = (1, 5)
) -> Dict[int, float]:
    """Top-k accuracy in percent for each ``k`` (see :func:`topk_correct`); NaN if N = 0."""
    counts = topk_correct(logits, labels, ks)
    n = len(labels)
    return {k: 100.0 * c / n if n else math.nan for k, c in counts.items()}


def per_class_accuracy(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Accuracy of each class in percent, as a float64 CPU tensor of length ``num_classes``.

    A class with no sample in ``labels`` gets NaN: it has no accuracy, and averaging code
    must skip it rather than count it as 0.

    Args:
        preds: ``[N]`` predicted class indices.
        labels: ``[N]`` true class indices.
        num_classes: C.
    """
    preds = preds.reshape(-1).long().cpu()
    labels = labels.reshape(-1).long().cpu()
    if preds.shape != labels.shape:
        raise ValueError(f"preds and labels differ in length: {len(preds)} vs {len(labels)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got {int(labels.min())}..{int(labels.max())}"
        )
    totals = torch.bincount(labels, minlength=num_classes).double()
    correct = torch.bincount(labels[preds == labels], minlength=num_classes).double()
    acc = 100.0 * correct / totals
    acc[totals == 0] = math.nan
    return acc


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> float:
    """Expected calibration error in percent, ``100 * sum_b |B_b|/N * |acc_b - conf_b|``.

    Confidence is the top probability; bins split [0, 1] into ``n_bins`` equal-width
    intervals closed on the right, ``(lo, hi]`` (a confidence of exactly 0 joins the first).

    Args:
        probs: ``[N, C]`` class probabilities (rows sum to 1).
        labels: ``[N]`` true class indices.
        n_bins: number of bins.

    Returns:
        ECE in percent; NaN if N = 0.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    n = len(labels)
    if n == 0:
        return math.nan
    conf, correct, bins = _confidence_bins(probs, labels, n_bins)
    # |B|/N * |acc_b - conf_b| equals |sum over B of (correct - conf)| / N.
    gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, correct - conf)
    return float(100.0 * gap.abs().sum() / n)


def _confidence_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int):
    """``(confidence, correct, bin index)`` per sample, float64 on the CPU.

    Bins are the ECE's: ``n_bins`` equal-width intervals ``(lo, hi]`` of [0, 1], with a
    confidence of exactly 0 in the first.
    """
    conf, pred = probs.detach().double().cpu().max(dim=1)
    correct = pred.eq(labels.cpu().long()).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    # Inner edges with right=False give bucket i for conf in (edge_i, edge_{i+1}].
    return conf, correct, torch.bucketize(conf, edges[1:-1], right=False)


def reliability_bins(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> Dict[str, list]:
    """The per-bin numbers behind a reliability diagram (the bins of the ECE).

    ``sum_b count_b / N * |accuracy_b - confidence_b|`` is
    :func:`expected_calibration_error` (in percent there, in [0, 1] here).

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true class indices.
        n_bins: number of equal-width bins ``(lo, hi]`` of [0, 1].

    Returns:
        ``{"edges": n_bins + 1 bin edges, "count": samples per bin, "confidence": mean top
        probability per bin, "accuracy": fraction correct per bin}``; confidence and
        accuracy are in [0, 1], and None for an empty bin.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf, correct, bins = _confidence_bins(probs, labels, n_bins)
    zeros = torch.zeros(n_bins, dtype=torch.float64)
    count = zeros.clone().index_add_(0, bins, torch.ones_like(conf))
    conf_sum = zeros.clone().index_add_(0, bins, conf)
    correct_sum = zeros.clone().index_add_(0, bins, correct)

    def per_bin_mean(total: torch.Tensor) -> list:
        return [float(t / c) if c > 0 else None for t, c in zip(total, count)]

    return {
        "edges": torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64).tolist(),
        "count": [int(c) for c in count],
        "confidence": per_bin_mean(conf_sum),
        "accuracy": per_bin_mean(correct_sum),
    }


def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood (nats) of the true labels under ``softmax(logits)``."""
    if len(labels) == 0:
        return math.nan
    return float(F.cross_entropy(logits.detach().double(), labels.long()))


def brier(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over samples of ``sum_c (p_c - 1[c = y])^2`` (0 = perfect, 2 = worst)."""
    if len(labels) == 0:
        return math.nan
    probs = probs.detach().double()
    onehot = F.one_hot(labels.long(), num_classes=probs.shape[1]).double()
    return float((probs - onehot).pow(2).sum(dim=1).mean())


def nan_to_none(values: torch.Tensor) -> list:
    """Tensor to a list of floats with NaN as ``None`` (JSON has no NaN)."""
    return [None if math.isnan(v) else float(v) for v in values.tolist()]
