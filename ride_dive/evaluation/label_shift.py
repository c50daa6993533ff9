"""Label-shift evaluation (the LADE protocol, docs/METHODS.md 7) from one set of test logits.

The classes are ranked by training count, head first (ties: lower class index first).
Forward-rho keeps ``n_c = floor(n_test * (1 / rho) ** (r / (C - 1)))`` test images of the
class at rank ``r``, the first ``n_c`` of that class in dataset order; Backward-rho gives
the class at rank ``r`` the count of rank ``C - 1 - r``; Uniform keeps ``n_test`` of every
class (rho = 1). ``n_test`` is the smallest per-class test count (the whole class on a
balanced test set). Every shifted set is a subset of the balanced test set, so the model
runs once and each protocol only selects rows of its logits.

Post-compensation (PC) knows the shifted set's class distribution ``p_target`` (it is
fixed by the protocol) and adds ``log p_target - log p_train`` to the logits. Models whose
logits already estimate the class-balanced posterior (trained with the log-prior added,
Balanced Softmax / DiVE, or on class-balanced batches) get ``+ log p_target`` only.
"""

import math
from typing import Dict, List, Optional, Sequence

import torch

from ..data.errors import DatasetError
from ..data.registry import SAMPLER_REGISTRY
from ..utils.modules import unwrap_model
from .metrics import per_class_accuracy, shot_group_accuracy, topk_accuracy

__all__ = [
    "DEFAULT_RHOS",
    "PROTOCOLS",
    "check_label_shift_test_counts",
    "class_ranks",
    "format_label_shift_table",
    "label_shift_report",
    "label_shift_rows",
    "post_compensate",
    "protocol_name",
    "shifted_class_counts",
    "shifted_indices",
    "trained_with_prior_logits",
]

PROTOCOLS = ("forward", "uniform", "backward")
DEFAULT_RHOS = (50, 25, 10, 5, 2)


def trained_with_prior_logits(cfg, model: torch.nn.Module) -> bool:
    """Whether the model's raw logits already estimate the class-balanced posterior.

    Decided by what the components declare, not by their names: a module of the model with
    a truthy ``estimates_balanced_posterior`` (Balanced Softmax, also as DiVE's hard-label
    loss or a RIDE expert's loss, which add ``log n_c`` to the logits while training; NCM,
    distances to class means; a tau-normalised ``LinearHead``, an approximation), or a
    training sampler with ``balances_classes`` (``ClassAwareSampler``: cRT and LWS
    classifiers see a uniform prior). PC then adds ``log p_target`` only. Square-root and
    progressively balanced samplers count as instance-balanced.
    """
    if any(
        getattr(m, "estimates_balanced_posterior", False) for m in unwrap_model(model).modules()
    ):
        return True
    sampler = SAMPLER_REGISTRY.get(cfg.DATALOADER.SAMPLER)
    return bool(getattr(sampler, "balances_classes", False))


def check_label_shift_test_counts(
    test_counts: Sequence[int], rhos: Sequence[float] = DEFAULT_RHOS
) -> Optional[str]:
    """Check that a test split can give the label-shift table.

    Every shifted set keeps at most ``n_test`` (the smallest per-class test count) images
    per class, so a class with no test image empties all of them.

    Returns:
        A warning when ``n_test`` is below the largest rho (the rarest classes of those
        shifted sets keep no image), else None.

    Raises:
        DatasetError: a class has no test image; the message names the classes and what
            to do.
    """
    empty = [c for c, n in enumerate(test_counts) if int(n) <= 0]
    if empty:
        shown = ", ".join(str(c) for c in empty[:10]) + (", ..." if len(empty) > 10 else "")
        raise DatasetError(
            f"The label-shift evaluation (TEST.LABEL_SHIFT / evaluate_run.py --label-shift) "
            f"needs test images of every class, but the test split has none of "
            f"{len(empty)} of its {len(test_counts)} classes ({shown}). Its shifted test "
            "sets keep up to n_test images per class, n_test being the smallest class's "
            "test count (docs/METHODS.md section 7), so here every one of them would be "
            "empty. Evaluate on a test split that has every class (DATASETS.TEST_LIST for "
            "list datasets), or leave the label-shift evaluation out."
        )
    n_test, top = min(int(n) for n in test_counts), max(float(r) for r in rhos)
    if n_test < top:
        return (
            f"label shift: the test split has only {n_test} image(s) of its rarest class, "
            f"so the shifted sets with rho > {n_test} keep no image of their rarest classes "
            "and rest on few images; treat those columns with care."
        )
    return None


def class_ranks(train_counts: Sequence[int]) -> List[int]:
    """Rank of every class by training count: 0 = most images; ties by class index."""
    order = sorted(range(len(train_counts)), key=lambda c: (-int(train_counts[c]), c))
    ranks = [0] * len(order)
    for rank, c in enumerate(order):
        ranks[c] = rank
    return ranks


def shifted_class_counts(
    train_counts: Sequence[int], test_counts: Sequence[int], protocol: str, rho: float = 1.0
) -> List[int]:
    """Test images kept per class under a protocol.

    Args:
        train_counts: training images per class (they fix the ranking).
        test_counts: test images per class; ``n_test`` is their minimum.
        protocol: "forward" (head keeps most), "backward" (tail keeps most) or "uniform".
        rho: imbalance of the shifted set, >= 1 (ignored for "uniform").

    Returns:
        ``n_c`` per class, in class order.
    """
    num_classes = len(train_counts)
    if len(test_counts) != num_classes:
        raise ValueError(f"train_counts has {num_classes} classes, test_counts {len(test_counts)}")
    if num_classes < 2:
        raise ValueError("label shift needs at least 2 classes")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "uniform":
        rho = 1.0
    if rho < 1:
        raise ValueError(f"rho must be >= 1, got {rho}")
    n_test = min(int(n) for n in test_counts)
    counts = []
    for rank in class_ranks(train_counts):
        if protocol == "backward":
            rank = num_classes - 1 - rank
        # The epsilon keeps float error (e.g. 19.999999999) from losing an image.
        counts.append(math.floor(n_test * (1.0 / rho) ** (rank / (num_classes - 1)) + 1e-9))
    return counts


def shifted_indices(labels: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """Indices of the first ``counts[c]`` samples of every class c, in dataset order."""
    labels = labels.reshape(-1).long().cpu()
    keep = []
    for c, n in enumerate(counts):
        members = (labels == c).nonzero().flatten()
        if len(members) < n:
            raise ValueError(f"class {c} has {len(members)} test samples, {n} requested")
        keep.append(members[: int(n)])
    return torch.cat(keep).sort().values


def _log_prior(counts: Sequence[float], what: str) -> torch.Tensor:
    counts = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"{what} must be >= 0 with a positive sum")
    return (counts / counts.sum()).log()  # a class with no sample gets -inf


def post_compensate(
    logits: torch.Tensor,
    target_counts: Sequence[float],
    train_counts: Sequence[float],
    trained_with_prior: bool,
) -> torch.Tensor:
    """PC: ``logits + log p_target - log p_train`` (``+ log p_target`` for prior-trained).

    Args:
        logits: ``[N, C]``.
        target_counts: class counts (or probabilities) of the test distribution; a class
            with 0 gets a logit of -inf (it cannot be the answer).
        train_counts: training images per class (all > 0).
        trained_with_prior: the logits already estimate the balanced posterior (see
            :func:`trained_with_prior_logits`).

    Returns:
        Adjusted float32 logits.
    """
    shift = _log_prior(target_counts, "target_counts")
    if not trained_with_prior:
        if any(float(n) <= 0 for n in train_counts):
            raise ValueError("every class needs training images to remove the training prior")
        shift = shift - _log_prior(train_counts, "train_counts")
    if len(shift) != logits.shape[1]:
        raise ValueError(f"{len(shift)} class counts for {logits.shape[1]} logits")
    return logits.float() + shift.to(logits.device, torch.float32)


def _protocol_grid(rhos: Sequence[float]):
    """(protocol, rho) in the LADE table order: Forward 50..2, Uniform, Backward 2..50."""
    down = sorted({float(r) for r in rhos}, reverse=True)
    return (
        [("forward", r) for r in down]
        + [("uniform", 1.0)]
        + [("backward", r) for r in reversed(down)]
    )


def label_shift_rows(
    logits: torch.Tensor,
    labels: torch.Tensor,
    train_counts: Sequence[int],
    trained_with_prior: bool,
    rhos: Sequence[float] = DEFAULT_RHOS,
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> List[Dict]:
    """Accuracy on every shifted test set, without and with PC.

    Args:
        logits: ``[N, C]`` logits of the whole (balanced) test set, computed once.
        labels: ``[N]`` labels, in dataset order.
        train_counts: training images per class.
        trained_with_prior: see :func:`post_compensate`.
        rhos: the imbalance ratios of Forward / Backward.
        many_threshold, few_threshold: shot groups by training count.

    Returns:
        Rows ``{"protocol", "rho", "pc", "top1", "many", "medium", "few", "n"}`` in the
        order of the LADE table, each protocol without then with PC; percentages; a shot
        group with no class in the shifted set is absent.
    """
    logits, labels = logits.float().cpu(), labels.long().cpu()
    num_classes = logits.shape[1]
    if len(train_counts) != num_classes:
        raise ValueError(f"train_counts has {len(train_counts)} classes, the logits {num_classes}")
    test_counts = torch.bincount(labels, minlength=num_classes).tolist()
    check_label_shift_test_counts(test_counts, rhos)
    rows = []
    for protocol, rho in _protocol_grid(rhos):
        counts = shifted_class_counts(train_counts, test_counts, protocol, rho)
        index = shifted_indices(labels, counts)
        z, y = logits[index], labels[index]
        for pc in (False, True):
            scores = post_compensate(z, counts, train_counts, trained_with_prior) if pc else z
            per_class = per_class_accuracy(scores.argmax(dim=1), y, num_classes)
            rows.append(
                {
                    "protocol": protocol,
                    "rho": rho,
                    "pc": pc,
                    # ks as in compute_classification_metrics: exact ties of bf16 logits then
                    # break the same way, and Uniform without PC repeats the headline top-1.
                    "top1": topk_accuracy(scores, y, ks=(1, 5))[1],
                    **shot_group_accuracy(per_class, train_counts, many_threshold, few_threshold),
                    "n": int(len(y)),
                }
            )
    return rows


def label_shift_report(
    logits: torch.Tensor,
    labels: torch.Tensor,
    train_counts: Sequence[int],
    trained_with_prior: bool,
    rhos: Optional[Sequence[float]] = None,
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> Dict:
    """:func:`label_shift_rows` with what they depend on, for ``results["label_shift"]``.

    Returns:
        ``{"trained_with_prior_logits", "n_test_per_class", "rhos", "rows"}``.
    """
    rhos = list(DEFAULT_RHOS if rhos is None else rhos)
    rows = label_shift_rows(
        logits, labels, train_counts, trained_with_prior, rhos, many_threshold, few_threshold
    )
    test_counts = torch.bincount(labels.long().cpu(), minlength=logits.shape[1])
    report = {
        "trained_with_prior_logits": bool(trained_with_prior),
        "n_test_per_class": int(test_counts.min()),
        "rhos": [float(r) for r in rhos],
        "rows": rows,
    }
    warning = check_label_shift_test_counts(test_counts.tolist(), rhos)
    if warning:
        report["warning"] = warning
    return report


def protocol_name(protocol: str, rho: float) -> str:
    """Column header: "F-50", "Uniform", "B-2"."""
    if protocol == "uniform":
        return "Uniform"
    return f"{protocol[0].upper()}-{rho:g}"


def format_label_shift_table(report: Dict) -> str:
    """Markdown: top-1 per protocol (columns) without / with PC, then every row in full."""
    rows = report["rows"]
    names = list(dict.fromkeys(protocol_name(r["protocol"], r["rho"]) for r in rows))
    prior = (
        "+ log p_target" if report["trained_with_prior_logits"] else "+ log p_target - log p_train"
    )
    lines = [
        f"Top-1 (%) under label shift; PC adds {prior} to the logits.",
        "",
        "| | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for pc in (False, True):
        cells = [f"{r['top1']:.2f}" for r in rows if r["pc"] == pc]
        lines.append(f"| {'PC' if pc else 'no PC'} | " + " | ".join(cells) + " |")
    if report.get("warning"):
        lines += ["", f"Note: {report['warning']}"]
    lines += [
        "",
        "| protocol | PC | images | top1 | many | medium | few |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        groups = " | ".join(f"{r[k]:.2f}" if k in r else "-" for k in ("many", "medium", "few"))
        lines.append(
            f"| {protocol_name(r['protocol'], r['rho'])} | {'yes' if r['pc'] else 'no'}"
            f" | {r['n']} | {r['top1']:.2f} | {groups} |"
        )
    return "\n".join(lines) + "\n"
