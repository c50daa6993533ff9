"""Run a classifier over a test loader and turn its logits into the long-tail metrics.

Each process may see only its shard of the test set; ``utils.comm.gather_predictions`` joins
the shards before any metric is computed, so every rank ends with the same numbers. Logits are
kept on the CPU in float32: even iNaturalist's 24k x 8142 validation logits fit in memory,
and the metrics need them all at once (ECE, per-class accuracy).
"""

import logging
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..config import configurable
from ..utils.comm import gather_predictions
from ..utils.modules import inference_context, logits_of
from .label_shift import label_shift_report, trained_with_prior_logits
from .metrics import (
    brier,
    expected_calibration_error,
    nan_to_none,
    nll,
    per_class_accuracy,
    shot_group_accuracy,
    topk_accuracy,
)
from .multi_expert import ExpertOutputsEvaluator

logger = logging.getLogger(__name__)


def compute_classification_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    train_counts: Optional[Sequence[int]] = None,
    many_threshold: int = 100,
    few_threshold: int = 20,
    ece_bins: int = 15,
) -> Dict[str, object]:
    """All evaluation metrics of a set of logits; see :func:`inference_on_dataset`."""
    num_classes = logits.shape[1]
    if len(labels) == 0:
        raise ValueError("cannot evaluate: the evaluation set has no samples")
    logits = logits.float()
    labels = labels.long()
    # With fewer than 5 classes "top5" is top-C, i.e. always 100.
    top = topk_accuracy(logits, labels, ks=(1, 5))
    probs = logits.softmax(dim=1)
    # The top-1 prediction exactly as topk_accuracy ranks it (the same topk call: k = 5 or
    # C), so exact ties (common with bf16 logits) count alike in top-1 and per class.
    predicted = logits.topk(min(5, num_classes), dim=1).indices[:, 0]
    per_class = per_class_accuracy(predicted, labels, num_classes)
    results: Dict[str, object] = {"top1": top[1], "top5": top[5]}
    if train_counts is not None:
        if len(train_counts) != num_classes:
            raise ValueError(
                f"train_counts has {len(train_counts)} classes but the model outputs "
                f"{num_classes} logits"
            )
        results.update(shot_group_accuracy(per_class, train_counts, many_threshold, few_threshold))
    results["per_class"] = nan_to_none(per_class)
    results["ece"] = expected_calibration_error(probs, labels, ece_bins)
    results["nll"] = nll(logits, labels)
    results["brier"] = brier(probs, labels)
    results["num_samples"] = int(len(labels))
    return results


class ClassificationEvaluator:
    """Accumulates ``(logits, labels)`` batches and computes the metrics over all ranks.

    Usage: ``reset()``, ``process(logits, labels)`` per batch, ``evaluate()`` once.
    """

    @configurable
    def __init__(
        self,
        train_counts: Optional[Sequence[int]] = None,
        many_threshold: int = 100,
        few_threshold: int = 20,
        ece_bins: int = 15,
        label_shift: bool = False,
        trained_with_prior: bool = False,
    ):
        """
        Args:
            train_counts: training images per class; None = no many/medium/few groups.
            many_threshold: classes with more training images are many-shot.
            few_threshold: classes with fewer training images are few-shot.
            ece_bins: equal-width confidence bins of the ECE.
            label_shift: add ``"label_shift"``, the LADE label-shift table of
                :func:`label_shift_report` (needs ``train_counts``).
            trained_with_prior: for the label shift's PC: the logits already estimate the
                balanced posterior (see :func:`trained_with_prior_logits`).
        """
        if label_shift and train_counts is None:
            raise ValueError("label-shift evaluation needs the training class counts")
        self.train_counts = None if train_counts is None else [int(n) for n in train_counts]
        self.many_threshold = many_threshold
        self.few_threshold = few_threshold
        self.ece_bins = ece_bins
        self.label_shift = label_shift
        self.trained_with_prior = trained_with_prior
        self.reset()

    @classmethod
    def from_config(
        cls,
        cfg,
        train_counts: Optional[Sequence[int]] = None,
        model: Optional[torch.nn.Module] = None,
    ) -> dict:
        # Whether the logits are prior-free is a property of the model's components, so the
        # label-shift table needs the model; without the table nothing depends on it.
        if cfg.TEST.LABEL_SHIFT and model is None:
            raise ValueError(
                "TEST.LABEL_SHIFT: pass the model (model=...) so that the "
                "post-compensation knows whether its logits are prior-free"
            )
        return {
            "train_counts": train_counts,
            "many_threshold": cfg.TEST.MANY_THRESHOLD,
            "few_threshold": cfg.TEST.FEW_THRESHOLD,
            "ece_bins": cfg.TEST.ECE_BINS,
            "label_shift": cfg.TEST.LABEL_SHIFT,
            "trained_with_prior": model is not None and trained_with_prior_logits(cfg, model),
        }

    def reset(self) -> None:
        """Forget every processed batch."""
        self._logits: List[torch.Tensor] = []
        self._labels: List[torch.Tensor] = []

    def process(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Store one batch (copied to the CPU as float32 / int64)."""
        self._logits.append(logits.detach().float().cpu())
        self._labels.append(labels.detach().long().cpu())

    def evaluate(self) -> Dict[str, object]:
        """Gather all ranks' batches and return the metrics dict (same on every rank)."""
        if not self._logits:
            raise ValueError("cannot evaluate: no batch was processed")
        logits, labels = gather_predictions(torch.cat(self._logits), torch.cat(self._labels))
        results = compute_classification_metrics(
            logits,
            labels,
            self.train_counts,
            self.many_threshold,
            self.few_threshold,
            self.ece_bins,
        )
        if self.label_shift:
            results["label_shift"] = label_shift_report(
                logits,
                labels,
                self.train_counts,
                self.trained_with_prior,
                many_threshold=self.many_threshold,
                few_threshold=self.few_threshold,
            )
        return results


def _model_outputs(
    model: torch.nn.Module, loader, device: torch.device, autocast_dtype: Optional[torch.dtype]
):
    """Yield ``(model output, labels)`` per batch in eval and inference mode (autocast if
    asked); every module's ``training`` flag is restored afterwards."""
    with (
        inference_context(model),
        torch.autocast(
            device_type=device.type,
            dtype=autocast_dtype or torch.bfloat16,
            enabled=autocast_dtype is not None,
        ),
    ):
        for images, labels in loader:
            yield model(images.to(device, non_blocking=True)), labels


def predict_on_dataset(
    model: torch.nn.Module,
    loader,
    device: Union[str, torch.device],
    autocast_dtype: Optional[torch.dtype] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits ``[N, C]`` and labels ``[N]`` of a whole split, in loader order.

    Runs as :func:`inference_on_dataset` does (eval mode, inference mode, every module's
    ``training`` flag restored afterwards, shards gathered across ranks), for callers that
    compute several things from one pass (calibration bins, label-shift subsets).
    """
    all_logits: List[torch.Tensor] = []
    all_labels: List[torch.Tensor] = []
    for output, labels in _model_outputs(model, loader, torch.device(device), autocast_dtype):
        all_logits.append(logits_of(output).detach().float().cpu())
        all_labels.append(labels.detach().long().cpu())
    if not all_logits:
        raise ValueError("cannot evaluate: the loader yielded no batch")
    return gather_predictions(torch.cat(all_logits), torch.cat(all_labels))


def inference_on_dataset(
    model: torch.nn.Module,
    loader,
    train_counts: Optional[Sequence[int]],
    device: Union[str, torch.device],
    autocast_dtype: Optional[torch.dtype] = None,
    many_threshold: int = 100,
    few_threshold: int = 20,
    ece_bins: int = 15,
    label_shift: bool = False,
    trained_with_prior: bool = False,
) -> Dict[str, object]:
    """Evaluate ``model`` on every ``(images, labels)`` batch of ``loader``.

    The model runs in eval mode under ``torch.inference_mode``; afterwards every submodule
    gets back its own previous ``training`` flag (a frozen teacher inside a training
    student stays in eval mode).

    Args:
        model: returns ``[B, C]`` logits (or a dict with ``"logits"``) in eval mode. A dict
            may also carry ``"expert_logits"`` ``[E, B, C]``, ``"experts_used"`` ``[B]``
            and ``"num_experts"`` (multi-expert models), reported as described below.
        loader: yields ``(images, labels)``; images already normalised float tensors. In
            distributed runs each rank's loader yields its own shard.
        train_counts: training images per class, for the shot groups (None = skip them).
        device: where the model runs.
        autocast_dtype: e.g. ``torch.bfloat16`` to run under autocast; None = full precision.
        many_threshold, few_threshold: shot-group thresholds (docs/METHODS.md: 100 and 20).
        ece_bins: bins of the expected calibration error.
        label_shift, trained_with_prior: the label-shift table (``TEST.LABEL_SHIFT``;
            see :class:`ClassificationEvaluator`), from the same logits.

    Returns:
        ``{"top1", "top5", "many", "medium", "few", "per_class", "ece", "nll", "brier",
        "num_samples"}``. Accuracies and ECE in percent; ``top5`` is top-C when C < 5; a
        shot group with no evaluated class is absent; ``per_class`` has None for classes
        missing from the evaluation set; ``nll`` in nats; ``brier`` summed over classes.
        Multi-expert outputs add ``"expert_top1"`` (each expert's own top-1),
        ``"experts_used"`` (percent of samples per number of experts run) and
        ``"experts_used_mean"``. ``label_shift`` adds ``"label_shift"``.
    """
    device = torch.device(device)
    evaluator = ClassificationEvaluator(
        train_counts, many_threshold, few_threshold, ece_bins, label_shift, trained_with_prior
    )
    experts = ExpertOutputsEvaluator()
    start = time.perf_counter()
    for output, labels in _model_outputs(model, loader, device, autocast_dtype):
        evaluator.process(logits_of(output), labels)
        if isinstance(output, Mapping):
            experts.process(output, labels)
    results = evaluator.evaluate()
    results.update(experts.evaluate())
    logger.info(
        "Evaluated %d samples in %.1f s", results["num_samples"], time.perf_counter() - start
    )
    return results
