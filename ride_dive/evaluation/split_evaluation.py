"""Evaluation of a model on one split of a run, from its config: the metrics, the router's
threshold chosen on validation, its accuracy/compute sweep, and the MACs per image.

These are the building blocks of the evaluators (``evaluation.evaluators``) and of the
periodic evaluation during training.
"""

import logging
from typing import Dict, Optional

import torch

from ..config import CfgNode
from ..data import build_test_loader, model_input_size
from ..modeling import count_macs
from ..utils import comm
from ..utils.env import autocast_name, eval_amp_dtype
from ..utils.modules import unwrap_model
from ..utils.run_dir import RunDir
from .evaluator import inference_on_dataset
from .label_shift import trained_with_prior_logits
from .multi_expert import has_router, router_tradeoff, select_router_threshold
from .reporting import format_router_table, plot_router_tradeoff

__all__ = [
    "evaluate",
    "inference_gmacs",
    "split_loader",
    "router_evaluation",
    "select_router_threshold_on_val",
]

logger = logging.getLogger("ride_dive")


def split_loader(cfg: CfgNode, dataset, device):
    """The evaluation loader of ``dataset``: TEST.BATCH_SIZE, this rank's shard."""
    return build_test_loader(
        cfg, dataset, num_replicas=comm.get_world_size(), rank=comm.get_rank(), device=device
    )


def evaluate(
    cfg: CfgNode, model: torch.nn.Module, dataset, class_counts, device, label_shift: bool = False
) -> Dict:
    """Top-1/top-5, many/medium/few, per-class accuracy and ECE of ``model`` on ``dataset``;
    with ``label_shift`` also the LADE label-shift table (``"label_shift"``), computed from
    the same logits; ``"eval_precision"`` says how the model ran (TEST.AMP)."""
    dtype = eval_amp_dtype(cfg)
    results = inference_on_dataset(
        model,
        split_loader(cfg, dataset, device),
        class_counts,
        device,
        autocast_dtype=dtype,
        many_threshold=cfg.TEST.MANY_THRESHOLD,
        few_threshold=cfg.TEST.FEW_THRESHOLD,
        ece_bins=cfg.TEST.ECE_BINS,
        label_shift=label_shift,
        trained_with_prior=trained_with_prior_logits(cfg, model),
    )
    results["eval_precision"] = autocast_name(dtype)
    return results


def _router_sweep(
    cfg: CfgNode, model: torch.nn.Module, dataset, class_counts, device, thresholds
) -> Dict:
    """``router_tradeoff`` on ``dataset`` at the model's current threshold."""
    size = model_input_size(cfg)
    return router_tradeoff(
        model,
        split_loader(cfg, dataset, device),
        class_counts,
        device,
        input_shape=(cfg.MODEL.BACKBONE.IN_CHANNELS, size, size),
        thresholds=thresholds,
        threshold=unwrap_model(model).router_threshold,
        autocast_dtype=eval_amp_dtype(cfg),
        many_threshold=cfg.TEST.MANY_THRESHOLD,
        few_threshold=cfg.TEST.FEW_THRESHOLD,
    )


def select_router_threshold_on_val(
    cfg: CfgNode, model: torch.nn.Module, val_dataset, class_counts, device
) -> Optional[Dict]:
    """Set the model's router threshold to the one chosen on the validation split.

    Active for a model with a router when ``TEST.ROUTER_SELECT_MAX_TOP1_DROP >= 0``: sweeps
    ``TEST.ROUTER_THRESHOLDS`` (and 0, the full ensemble) on ``val_dataset`` and applies
    ``select_router_threshold``. Without a validation split the configured threshold stays
    and a warning says so: choosing it on the test split would tune on test.

    Returns:
        ``{"split": "val", "threshold", "top1", "experts_used_mean", "gmacs",
        "full_ensemble_top1", "max_top1_drop", "sweep"}`` (validation numbers), or None when
        nothing was selected.
    """
    max_drop = cfg.TEST.ROUTER_SELECT_MAX_TOP1_DROP
    if max_drop < 0 or not has_router(model):
        return None
    if val_dataset is None:
        logger.warning(
            "TEST.ROUTER_SELECT_MAX_TOP1_DROP is set but there is no validation split "
            "(DATASETS.VAL_SOURCE is 'none'): the router threshold is NOT selected and stays "
            f"MODEL.ROUTER.THRESHOLD = {cfg.MODEL.ROUTER.THRESHOLD}. The test split is never "
            "used to choose it; set DATASETS.VAL_SOURCE to get a selection."
        )
        return None
    thresholds = sorted({0.0, *cfg.TEST.ROUTER_THRESHOLDS})
    report = _router_sweep(cfg, model, val_dataset, class_counts, device, thresholds)
    choice = select_router_threshold(report, max_drop)
    unwrap_model(model).router_threshold = choice["threshold"]
    if comm.is_main_process():
        logger.info("\n" + format_router_table(report, "Router (validation)"))
        logger.info(
            f"Router threshold chosen on validation: {choice['threshold']:g} "
            f"({choice['experts_used_mean']:.2f} experts/image, top-1 {choice['top1']:.2f} vs "
            f"{choice['full_ensemble_top1']:.2f} for the full ensemble, allowed drop "
            f"{max_drop:g})"
        )
    return {"split": "val", **choice, "sweep": report["sweep"]}


def router_evaluation(
    cfg: CfgNode, model: torch.nn.Module, dataset, class_counts, device
) -> Optional[Dict]:
    """Accuracy/compute sweep over TEST.ROUTER_THRESHOLDS for a model with a router.

    The starred row is the model's current threshold (MODEL.ROUTER.THRESHOLD, or the one
    ``select_router_threshold_on_val`` chose). Logs the table and writes
    ``OUTPUT_DIR/router_tradeoff.png`` (main process). Returns None for models without a
    router (and with an empty sweep).
    """
    if not has_router(model) or not cfg.TEST.ROUTER_THRESHOLDS:
        return None
    report = _router_sweep(cfg, model, dataset, class_counts, device, cfg.TEST.ROUTER_THRESHOLDS)
    if comm.is_main_process():
        logger.info("\n" + format_router_table(report, "Router (test)"))
        plot = RunDir(cfg.OUTPUT_DIR).router_plot
        if plot_router_tradeoff(report, plot):
            logger.info(f"Router trade-off plot: {plot}")
    return report


def inference_gmacs(cfg: CfgNode, model: torch.nn.Module) -> float:
    """GMACs per image of the model's router-free inference (fvcore), for the reports.

    A model that defines ``inference_macs(input_shape)`` counts itself (RIDE: all its
    experts, the full ensemble; with a router the average depends on the data and comes
    from ``router_evaluation`` instead); any other is counted as a whole.
    """
    model = unwrap_model(model)
    size = model_input_size(cfg)
    shape = (cfg.MODEL.BACKBONE.IN_CHANNELS, size, size)
    counter = getattr(model, "inference_macs", None)
    return counter(shape) if callable(counter) else count_macs(model, shape)
