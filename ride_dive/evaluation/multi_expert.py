"""Evaluation of multi-expert models (RIDE): each expert's own accuracy, how many experts
the samples used, and the expert router's accuracy against compute.

Per expert. A model's eval-mode output dict may carry ``"expert_logits"`` ``(E, N, C)``,
``"experts_used"`` ``(N,)`` and ``"num_experts"`` (E, so that the distribution of experts
used lists every count, even one no sample reached). :class:`ExpertOutputsEvaluator`
reduces them batch by batch to per-sample values (whether each expert is right, how many
experts ran), so that memory does not grow with E x C, and gathers those across ranks like
the logits; ``inference_on_dataset`` uses it.

Router sweep. One pass over the evaluation set computes every expert and every router on
every sample (``model.forward_all``). With BatchNorm in eval mode samples are independent,
so the experts a sample would run under early exit at any threshold follow from its router
logits (``modeling.router.experts_used``), and so do its prediction and its compute: a
whole threshold sweep costs one pass. Compute is measured, not estimated: fvcore counts the
MACs of a sample that runs k experts (trunk, k experts, their heads, the routers
consulted), and a threshold's average MACs per image weights these by its experts-used
distribution. The model must provide ``router``, ``num_experts``, ``forward_all(images)``
and ``forward_first_experts(images, k, routers=True)`` (as ``modeling.meta_arch.RIDE``
does).
"""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..modeling.complexity import count_macs
from ..modeling.router import experts_used
from ..utils.comm import gather_predictions
from ..utils.modules import inference_context, unwrap_model
from .metrics import per_class_accuracy, shot_group_accuracy

__all__ = [
    "ExpertOutputsEvaluator",
    "expert_count_macs",
    "experts_used_distribution",
    "has_router",
    "router_tradeoff",
    "select_router_threshold",
]


def experts_used_distribution(used: torch.Tensor, num_experts: int) -> Dict[str, float]:
    """Percent of the samples that ran exactly k experts (``used``), keyed ``"1"``..``"E"``."""
    counts = torch.bincount(used.long().cpu(), minlength=num_experts + 1)[1:]
    total = max(int(counts.sum()), 1)
    return {str(k + 1): 100.0 * int(c) / total for k, c in enumerate(counts)}


class ExpertOutputsEvaluator:
    """Accumulates the per-expert outputs of a model's eval-mode dict.

    Usage: ``process(output, labels)`` per batch, then ``evaluate()`` (on every rank).
    """

    def __init__(self):
        self._correct: List[torch.Tensor] = []
        self._used: List[torch.Tensor] = []
        self._num_experts = 0

    def process(self, output: Mapping, labels: torch.Tensor) -> None:
        """Store one batch's per-expert correctness and experts-used counts, if present."""
        labels = labels.detach().cpu().long()
        expert_logits = output.get("expert_logits")
        if expert_logits is not None:
            preds = expert_logits.detach().argmax(dim=2).cpu()
            self._correct.append((preds == labels.view(1, -1)).t())
            self._num_experts = max(self._num_experts, expert_logits.shape[0])
        used = output.get("experts_used")
        if used is not None:
            self._used.append(used.detach().cpu().long())
            self._num_experts = max(
                self._num_experts, int(used.max()), int(output.get("num_experts", 0))
            )

    def evaluate(self) -> Dict[str, object]:
        """``{"expert_top1": [E percentages], "experts_used": {"1": %, ...},
        "experts_used_mean": float}``, each entry only when its output was seen.

        Every rank must call this (it gathers), even one whose shard was empty.
        """
        results: Dict[str, object] = {}
        if self._correct:
            correct = torch.cat(self._correct).float()
            correct, _ = gather_predictions(correct, torch.zeros(len(correct)))
            results["expert_top1"] = (100.0 * correct.mean(dim=0)).tolist()
        if self._used:
            used = torch.cat(self._used)
            used, _ = gather_predictions(used, torch.zeros(len(used)))
            num_experts = max(self._num_experts, int(used.max()))
            results["experts_used"] = experts_used_distribution(used, num_experts)
            results["experts_used_mean"] = float(used.float().mean())
        return results


def has_router(model: nn.Module) -> bool:
    """Whether ``model`` (or the module inside a DDP wrapper) has an expert router."""
    return getattr(unwrap_model(model), "router", None) is not None


class _FirstExperts(nn.Module):
    """The compute path of a sample that runs experts 1..k (what fvcore traces)."""

    def __init__(self, model: nn.Module, k: int, routers: bool):
        super().__init__()
        self.model, self.k, self.routers = model, k, routers

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.model.forward_first_experts(images, self.k, routers=self.routers)


def expert_count_macs(
    model: nn.Module,
    input_shape: Sequence[int],
    counts: Optional[Sequence[int]] = None,
    routers: bool = True,
) -> List[float]:
    """GMACs per image of a sample that runs k experts, for each k in ``counts``.

    Args:
        model: a RIDE-like model (see the module docstring).
        input_shape: ``(C, H, W)`` of one image.
        counts: the numbers of experts k; None = 1..E.
        routers: count the routers such a sample consults; with False and k = E this is
            the router-free full ensemble.
    """
    model = unwrap_model(model)
    counts = range(1, model.num_experts + 1) if counts is None else counts
    # count_macs switches the model to eval and back as a whole; the context gives every
    # submodule its own flag back (the router stage keeps its frozen parts in eval mode).
    with inference_context(model):
        return [count_macs(_FirstExperts(model, k, routers), input_shape) for k in counts]


def _collect(model, loader, device, autocast_dtype):
    """Per sample: predictions of ensembles 1..k ``(N, E)``, router logits ``(N, E-1)``."""
    preds, router_logits, labels = [], [], []
    with (
        inference_context(model),
        torch.autocast(
            device_type=device.type,
            dtype=autocast_dtype or torch.bfloat16,
            enabled=autocast_dtype is not None,
        ),
    ):
        for images, targets in loader:
            out = model.forward_all(images.to(device, non_blocking=True))
            cumulative = out["expert_logits"].float().cumsum(dim=0)
            preds.append(cumulative.argmax(dim=2).t().cpu())
            router_logits.append(out["router_logits"].float().t().cpu())
            labels.append(targets.long().cpu())
    labels = torch.cat(labels)
    # Class indices are exact in float32 (< 2^24), so the gather's float path is safe.
    preds, _ = gather_predictions(torch.cat(preds).float(), labels)
    router_logits, labels = gather_predictions(torch.cat(router_logits), labels)
    return preds.long(), router_logits, labels


def _row(preds, router_logits, labels, threshold, macs, train_counts, many, few) -> Dict:
    used = experts_used(router_logits.t(), threshold)
    final = preds.gather(1, (used - 1).unsqueeze(1)).squeeze(1)
    row: Dict[str, object] = {
        "threshold": float(threshold),
        "top1": 100.0 * float((final == labels).float().mean()),
    }
    if train_counts is not None:
        per_class = per_class_accuracy(final, labels, len(train_counts))
        row.update(shot_group_accuracy(per_class, train_counts, many, few))
    row["experts_used_mean"] = float(used.float().mean())
    row["experts_used"] = experts_used_distribution(used, preds.shape[1])
    row["gmacs"] = float(torch.tensor(macs, dtype=torch.float64)[used - 1].mean())
    return row


def router_tradeoff(
    model: nn.Module,
    loader,
    train_counts: Optional[Sequence[int]],
    device,
    input_shape: Sequence[int],
    thresholds: Sequence[float],
    threshold: float,
    autocast_dtype: Optional[torch.dtype] = None,
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> Dict[str, object]:
    """Accuracy, experts used and average MACs per image at each router threshold.

    Args:
        model: a RIDE-like model with a router.
        loader: evaluation batches ``(images, labels)`` (this rank's shard).
        train_counts: training images per class (for many/medium/few); None = skip.
        device: where the model runs.
        input_shape: ``(C, H, W)`` of one image, for the MAC counts.
        thresholds: the sweep (``TEST.ROUTER_THRESHOLDS``).
        threshold: the configured threshold (``MODEL.ROUTER.THRESHOLD``), always included.
        autocast_dtype: autocast dtype or None.
        many_threshold, few_threshold: shot-group thresholds.

    Returns:
        ``{"threshold", "gmacs" (average at the configured threshold), "experts_used",
        "experts_used_mean", "full_ensemble_gmacs", "gmacs_per_expert_count" (k = 1..E,
        routers included), "sweep": [rows by threshold]}``; a row has ``threshold``,
        ``top1``, the shot groups, ``experts_used_mean``, ``experts_used`` and ``gmacs``.
    """
    model = unwrap_model(model)
    device = torch.device(device)
    macs = expert_count_macs(model, input_shape)
    full = expert_count_macs(model, input_shape, [model.num_experts], routers=False)[0]
    preds, router_logits, labels = _collect(model, loader, device, autocast_dtype)
    args = (preds, router_logits, labels)
    extra = (macs, train_counts, many_threshold, few_threshold)
    swept = sorted({float(threshold), *(float(t) for t in thresholds)})
    sweep = [_row(*args, t, *extra) for t in swept]
    at = sweep[swept.index(float(threshold))]
    return {
        "threshold": float(threshold),
        "top1": at["top1"],
        "gmacs": at["gmacs"],
        "experts_used": at["experts_used"],
        "experts_used_mean": at["experts_used_mean"],
        "full_ensemble_gmacs": full,
        "full_ensemble_top1": 100.0 * float((preds[:, -1] == labels).float().mean()),
        "gmacs_per_expert_count": macs,
        "num_samples": int(len(labels)),
        "sweep": sweep,
    }


def select_router_threshold(report: Mapping, max_top1_drop: float) -> Dict[str, float]:
    """The cheapest threshold of a sweep that keeps top-1 within ``max_top1_drop`` points of
    the full ensemble.

    Meant for a sweep on the validation split (``router_tradeoff``'s report): among the rows
    whose top-1 is at least ``full_ensemble_top1 - max_top1_drop``, the one with the fewest
    experts per image on average wins; ties go to the higher top-1, then to the lower
    threshold. When no row qualifies (a sweep without threshold 0, the full ensemble), the
    most accurate row is taken.

    Returns:
        ``{"threshold", "top1", "experts_used_mean", "gmacs", "full_ensemble_top1",
        "max_top1_drop"}`` of the chosen row.
    """
    if max_top1_drop < 0:
        raise ValueError(f"max_top1_drop must be >= 0, got {max_top1_drop}")
    rows = report["sweep"]
    if not rows:
        raise ValueError("the router sweep is empty: nothing to select from")
    floor = report["full_ensemble_top1"] - max_top1_drop
    # A tiny slack so that a row exactly at the floor is not lost to float rounding.
    qualified = [r for r in rows if r["top1"] >= floor - 1e-9]
    if qualified:
        best = min(qualified, key=lambda r: (r["experts_used_mean"], -r["top1"], r["threshold"]))
    else:
        best = max(rows, key=lambda r: (r["top1"], -r["experts_used_mean"]))
    return {
        "threshold": best["threshold"],
        "top1": best["top1"],
        "experts_used_mean": best["experts_used_mean"],
        "gmacs": best["gmacs"],
        "full_ensemble_top1": report["full_ensemble_top1"],
        "max_top1_drop": float(max_top1_drop),
    }
