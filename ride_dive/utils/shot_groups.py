"""Many / medium / few-shot groups of classes by their training counts (docs/METHODS.md 1).

One definition, used by the accuracy tables (``evaluation.metrics``) and by DiVE's
virtual-example table (``modeling.virtual_examples``).
"""

from typing import Dict, Sequence, Union

import torch

__all__ = ["shot_group_accuracy"]

ArrayLike = Union[torch.Tensor, Sequence[float]]


def shot_group_accuracy(
    per_class_acc: ArrayLike,
    train_counts: ArrayLike,
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> Dict[str, float]:
    """Mean per-class accuracy of the many / medium / few-shot classes.

    Groups follow the training counts n_c: many if ``n_c > many_threshold``, few if
    ``n_c < few_threshold``, medium otherwise (both thresholds inclusive). Classes whose
    accuracy is NaN (absent from the evaluation set) are left out of the means, and a group
    with no evaluated class is omitted from the result instead of being reported as NaN.

    Args:
        per_class_acc: length-C accuracies (any scale; the means keep it).
        train_counts: length-C training image counts.
        many_threshold: counts above this are many-shot.
        few_threshold: counts below this are few-shot.

    Returns:
        A dict with a subset of the keys ``"many"``, ``"medium"``, ``"few"``, in that order.
    """
    acc = torch.as_tensor(per_class_acc, dtype=torch.float64).reshape(-1).cpu()
    counts = torch.as_tensor(train_counts, dtype=torch.float64).reshape(-1).cpu()
    if acc.shape != counts.shape:
        raise ValueError(f"per_class_acc has {len(acc)} classes but train_counts has {len(counts)}")
    if few_threshold > many_threshold:
        raise ValueError(f"few_threshold ({few_threshold}) > many_threshold ({many_threshold})")
    groups = {
        "many": counts > many_threshold,
        "medium": (counts >= few_threshold) & (counts <= many_threshold),
        "few": counts < few_threshold,
    }
    evaluated = ~torch.isnan(acc)
    out = {}
    for name, mask in groups.items():
        mask = mask & evaluated
        if mask.any():
            out[name] = float(acc[mask].mean())
    return out
