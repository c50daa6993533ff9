"""tau-normalisation sweep (Kang et al. 2020; docs/METHODS.md 5): choose tau on validation.

The classifier ``W`` is replaced by ``W_c / ||W_c||^tau`` with the bias dropped. The
features do not depend on tau, so they are computed once per split and every tau costs one
matrix product. The choice uses the validation split; only when there is none does it fall
back to the test split, and the result says so (``"selected_on": "test"``).
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..utils.comm import gather_predictions
from ..utils.modules import inference_context, unwrap_model
from .evaluator import compute_classification_metrics

__all__ = ["DEFAULT_TAUS", "collect_features", "format_tau_table", "select_tau", "tau_norm_sweep"]

logger = logging.getLogger("ride_dive")

# 0, 0.1, ..., 2.0 (rounded so that the values print and compare cleanly).
DEFAULT_TAUS = tuple(round(0.1 * i, 1) for i in range(21))


def collect_features(
    model: nn.Module, loader, device, autocast_dtype: Optional[torch.dtype] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Float32 features ``(N, D)`` and labels of a whole split (gathered across ranks).

    The model runs in eval and inference mode; every submodule's ``training`` flag is
    restored afterwards.
    """
    model = unwrap_model(model)
    device = torch.device(device)
    features, labels = [], []
    with (
        inference_context(model),
        torch.autocast(
            device_type=device.type,
            dtype=autocast_dtype or torch.bfloat16,
            enabled=autocast_dtype is not None,
        ),
    ):
        for images, targets in loader:
            features.append(model.extract_features(images.to(device)).float().cpu())
            labels.append(targets.long().cpu())
    # Concatenated outside inference mode: ordinary tensors that callers may fit on.
    return gather_predictions(torch.cat(features), torch.cat(labels))


def tau_norm_sweep(
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    train_counts: Sequence[int],
    taus: Sequence[float] = DEFAULT_TAUS,
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> List[Dict]:
    """top-1 / many / medium / few of the tau-normalised ``head`` for every tau.

    Args:
        head: a ``LinearHead`` (its ``tau`` attribute is set for each row and restored).
        features: ``(N, D)`` features of the split.
        labels: ``(N,)`` labels.
        train_counts: training images per class (shot groups).
        taus: the values swept.
    """
    if not hasattr(head, "tau") or not hasattr(head, "fc"):
        raise ValueError(
            f"tau-normalisation needs a LinearHead (MODEL.HEAD.NAME 'LinearHead'), got "
            f"{type(head).__name__}"
        )
    rows = []
    saved_tau = head.tau
    weight = head.fc.weight
    try:
        with inference_context(head):
            for tau in taus:
                head.tau = float(tau)
                logits = head(features.to(weight.device, weight.dtype)).float().cpu()
                metrics = compute_classification_metrics(
                    logits, labels, train_counts, many_threshold, few_threshold
                )
                row = {"tau": float(tau)}
                row.update(
                    {k: metrics[k] for k in ("top1", "many", "medium", "few") if k in metrics}
                )
                rows.append(row)
    finally:
        head.tau = saved_tau
    return rows


def select_tau(rows: Sequence[Dict]) -> Dict:
    """The row with the best top-1 (ties: the smaller tau)."""
    if not rows:
        raise ValueError("empty tau sweep")
    return max(rows, key=lambda r: (r["top1"], -r["tau"]))


def format_tau_table(rows: Sequence[Dict], title: str) -> str:
    """The sweep as text: tau, top-1 / many / medium / few per row."""
    lines = [title, f"{'tau':>5} {'top1':>7} {'many':>7} {'medium':>7} {'few':>7}"]
    for r in rows:
        cells = [
            f"{r[k]:7.2f}" if k in r else f"{'-':>7}" for k in ("top1", "many", "medium", "few")
        ]
        lines.append(f"{r['tau']:5.1f} " + " ".join(cells))
    return "\n".join(lines)
