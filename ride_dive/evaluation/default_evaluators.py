"""The default evaluators of a run (see ``evaluation.evaluators``), in the order they run."""

import logging
from typing import Dict, List

import torch
from torch import nn

from ..config import ConfigError
from ..data import unaugmented_view
from ..utils import comm
from ..utils.env import eval_amp_dtype
from ..utils.modules import unwrap_model
from .evaluators import EVALUATOR_REGISTRY, RunEvaluator
from .expert_check import expert_competence_warning
from .label_shift import check_label_shift_test_counts
from .multi_expert import has_router
from .reporting import save_results_json
from .split_evaluation import (
    evaluate,
    inference_gmacs,
    router_evaluation,
    select_router_threshold_on_val,
)
from .tau_norm import collect_features, format_tau_table, select_tau, tau_norm_sweep

__all__ = [
    "ComponentResults",
    "ExpertCompetenceCheck",
    "FitEvaluationHeads",
    "InferenceMacs",
    "RouterSweep",
    "RouterThresholdSelection",
    "TauNormSweep",
    "TestClassification",
    "ValidationClassification",
]

logger = logging.getLogger("ride_dive")


def _modules_with(model: nn.Module, attribute: str) -> List[nn.Module]:
    """The modules of ``model`` that have a truthy / callable ``attribute``."""
    return [m for m in unwrap_model(model).modules() if getattr(m, attribute, None)]


@EVALUATOR_REGISTRY.register()
class FitEvaluationHeads(RunEvaluator):
    """Fit the heads computed from training features (``fit(features, labels)``: NCM)
    before any number is computed.

    The features are the model's on the training split with the test-time transform, in
    float32 (class means of bf16 features would lose the small differences NCM's distances
    depend on), gathered from every rank, so every rank fits the same means.
    """

    @classmethod
    def applies(cls, cfg, model) -> bool:
        return bool(_modules_with(model, "fit"))

    def __call__(self, ctx, results) -> Dict:
        heads = _modules_with(ctx.model, "fit")
        loader = ctx.loader(unaugmented_view(ctx.cfg, ctx.splits.train))
        features, labels = collect_features(ctx.model, loader, ctx.device, autocast_dtype=None)
        for head in heads:
            head.fit(features, labels)
        logger.info(f"Fitted {type(heads[0]).__name__} on {len(labels)} training images")
        return {}


@EVALUATOR_REGISTRY.register()
class RouterThresholdSelection(RunEvaluator):
    """Choose the router threshold on validation (``TEST.ROUTER_SELECT_MAX_TOP1_DROP``)
    before any test number is computed; recorded under ``"router"]["selection"]``."""

    @classmethod
    def applies(cls, cfg, model) -> bool:
        return cfg.TEST.ROUTER_SELECT_MAX_TOP1_DROP >= 0 and has_router(model)

    def __call__(self, ctx, results) -> Dict:
        selection = select_router_threshold_on_val(
            ctx.cfg, ctx.model, ctx.splits.val, ctx.class_counts, ctx.device
        )
        return {} if selection is None else {"router": {"selection": selection}}


@EVALUATOR_REGISTRY.register()
class TestClassification(RunEvaluator):
    """The test split's metrics (top-1/5, shot groups, per class, calibration, and per
    expert for multi-expert models), with the label-shift table when ``TEST.LABEL_SHIFT``
    (from the same logits)."""

    def check_data(self, splits) -> None:
        if self.cfg.TEST.LABEL_SHIFT:
            counts = torch.bincount(splits.test.labels, minlength=len(splits.class_counts))
            check_label_shift_test_counts(counts.tolist())

    def __call__(self, ctx, results) -> Dict:
        return evaluate(
            ctx.cfg,
            ctx.model,
            ctx.splits.test,
            ctx.class_counts,
            ctx.device,
            label_shift=ctx.cfg.TEST.LABEL_SHIFT,
        )


@EVALUATOR_REGISTRY.register()
class ExpertCompetenceCheck(RunEvaluator):
    """Warn when the median expert is far below the ensemble (``TEST.EXPERT_GAP_WARNING``;
    docs/RIDE_DIVERSITY.md); the warning is logged and kept under ``"warnings"``."""

    def __call__(self, ctx, results) -> Dict:
        warning = expert_competence_warning(results, ctx.cfg.TEST.EXPERT_GAP_WARNING)
        if warning is None:
            return {}
        logger.warning(warning)
        return {"warnings": [warning]}


@EVALUATOR_REGISTRY.register()
class ComponentResults(RunEvaluator):
    """What the model's components report about themselves (``result_entries()``, e.g.
    the DiVE temperature in use: ``"distill_temperature"``)."""

    @classmethod
    def applies(cls, cfg, model) -> bool:
        return bool(_modules_with(model, "result_entries"))

    def __call__(self, ctx, results) -> Dict:
        entries = {}
        for module in _modules_with(ctx.model, "result_entries"):
            entries.update(module.result_entries())
        return entries


@EVALUATOR_REGISTRY.register()
class ValidationClassification(RunEvaluator):
    """The validation split's metrics under ``"val"`` (without the per-class list)."""

    def __call__(self, ctx, results) -> Dict:
        if ctx.splits.val is None:
            return {}
        val = evaluate(ctx.cfg, ctx.model, ctx.splits.val, ctx.class_counts, ctx.device)
        return {"val": {k: v for k, v in val.items() if k != "per_class"}}


@EVALUATOR_REGISTRY.register()
class InferenceMacs(RunEvaluator):
    """GMACs per image of the router-free model under ``"gmacs"`` (fvcore)."""

    def __call__(self, ctx, results) -> Dict:
        return {"gmacs": inference_gmacs(ctx.cfg, ctx.model)}


@EVALUATOR_REGISTRY.register()
class RouterSweep(RunEvaluator):
    """The router's accuracy/compute sweep on test over ``TEST.ROUTER_THRESHOLDS`` under
    ``"router"``; ``"gmacs"`` becomes the average under early exit at the model's
    threshold."""

    @classmethod
    def applies(cls, cfg, model) -> bool:
        return has_router(model) and len(cfg.TEST.ROUTER_THRESHOLDS) > 0

    def __call__(self, ctx, results) -> Dict:
        report = router_evaluation(
            ctx.cfg, ctx.model, ctx.splits.test, ctx.class_counts, ctx.device
        )
        return {"router": report, "gmacs": report["gmacs"]}


@EVALUATOR_REGISTRY.register()
class TauNormSweep(RunEvaluator):
    """tau-normalisation of the classifier (``TEST.TAU_NORM_SWEEP``; docs/METHODS.md 5).

    Sweeps ``TEST.TAU_NORM_TAUS`` on the validation split and reports the test numbers of
    the best tau under ``"tau_norm"`` (``{"selected_on", "tau", "sweep", "test",
    "test_tau0"}``; ``test_tau0`` is the raw ``W`` without bias, for reference), also
    written to ``OUTPUT_DIR/tau_norm.json``. Without a validation split tau is chosen on the
    test split, which is said loudly (stderr) and recorded (``"selected_on": "test"``).
    The model needs exactly one head that ``supports_tau_norm`` (a ``LinearHead``).
    """

    @classmethod
    def applies(cls, cfg, model) -> bool:
        if not cfg.TEST.TAU_NORM_SWEEP:
            return False
        heads = _modules_with(model, "supports_tau_norm")
        if len(heads) != 1:
            raise ConfigError(
                "TEST.TAU_NORM_SWEEP needs a model with one classifier head that supports "
                f"tau-normalisation (MODEL.HEAD.NAME 'LinearHead'); this one has {len(heads)} "
                f"(MODEL.META_ARCHITECTURE '{cfg.MODEL.META_ARCHITECTURE}', MODEL.HEAD.NAME "
                f"'{cfg.MODEL.HEAD.NAME}')"
            )
        return True

    def __call__(self, ctx, results) -> Dict:
        cfg, model = ctx.cfg, ctx.model
        head = _modules_with(model, "supports_tau_norm")[0]
        taus = list(cfg.TEST.TAU_NORM_TAUS)
        groups = (cfg.TEST.MANY_THRESHOLD, cfg.TEST.FEW_THRESHOLD)
        counts = ctx.class_counts

        def features(dataset):
            return collect_features(model, ctx.loader(dataset), ctx.device, eval_amp_dtype(cfg))

        selected_on, select_features, test_features = ctx.on_selection_and_test(features, "tau")
        sweep = tau_norm_sweep(head, *select_features, counts, taus, *groups)
        best = select_tau(sweep)
        test = tau_norm_sweep(head, *test_features, counts, [best["tau"], 0.0], *groups)
        report = {
            "selected_on": selected_on,
            "tau": best["tau"],
            "sweep": sweep,
            "test": test[0],
            "test_tau0": test[1],
            "weights": cfg.MODEL.WEIGHTS,
        }
        if comm.is_main_process():
            print(
                format_tau_table(
                    sweep,
                    f"tau-norm sweep on the {selected_on} split ({len(select_features[1])} images)",
                )
            )
            print(f"\nbest tau on {selected_on}: {best['tau']:g} (top-1 {best['top1']:.2f})")
            print(
                format_tau_table(
                    test, "test split: chosen tau, and tau = 0 (raw W, no bias) for reference"
                ),
                flush=True,
            )
            save_results_json(report, ctx.run_dir.tau_norm)
        return {"tau_norm": report}
