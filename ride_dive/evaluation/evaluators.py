"""A run's final evaluation as a list of evaluators: the second extension point.

``build_evaluators(cfg, model)`` returns the evaluators a run needs, in order: the default
ones that apply to this model and config (:data:`DEFAULT_EVALUATORS`), then the names in
``TEST.EXTRA_EVALUATORS``. ``run_evaluators`` calls each with the run's
:class:`EvaluationContext` and the results gathered so far, and merges the dict it returns
into them; ``DefaultTrainer.test`` writes the merged dict to ``results.json``.

An evaluator is a :class:`RunEvaluator` registered in :data:`EVALUATOR_REGISTRY`. It says
whether it applies from what the model's components declare (a router, a head with
``fit``, ``supports_tau_norm``, ``result_entries()``), never from their class names. The
order matters where one step prepares another: the NCM means are fitted and the router
threshold is chosen on validation before any test number is computed.

A new evaluator is one class in its own file (see docs/ARCHITECTURE.md)::

    @EVALUATOR_REGISTRY.register()
    class WorstClassAccuracy(RunEvaluator):
        def __call__(self, ctx, results):
            return {"worst_class": min(a for a in results["per_class"] if a is not None)}

and ``TEST.EXTRA_EVALUATORS: ["WorstClassAccuracy"]`` in a config.
"""

import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch
from fvcore.common.registry import Registry
from torch import nn

from ..config import CfgNode
from ..utils.registry import lookup
from ..utils.run_dir import RunDir
from .split_evaluation import split_loader

__all__ = [
    "DEFAULT_EVALUATORS",
    "EVALUATOR_REGISTRY",
    "EvaluationContext",
    "RunEvaluator",
    "build_evaluators",
    "run_evaluators",
]

EVALUATOR_REGISTRY = Registry("EVALUATOR")
EVALUATOR_REGISTRY.__doc__ = """
Steps of a run's final evaluation (``RunEvaluator`` subclasses), by name. The defaults are
listed in ``DEFAULT_EVALUATORS``; ``TEST.EXTRA_EVALUATORS`` adds more.
"""

# The default steps, in the order they run (each is skipped where it does not apply).
DEFAULT_EVALUATORS = (
    "FitEvaluationHeads",
    "RouterThresholdSelection",
    "TestClassification",
    "ExpertCompetenceCheck",
    "ComponentResults",
    "ValidationClassification",
    "InferenceMacs",
    "RouterSweep",
    "TauNormSweep",
    "PosthocLogitAdjustment",
)


@dataclass
class EvaluationContext:
    """What an evaluator gets: the run and its data.

    Attributes:
        cfg: the run's config.
        model: the model, with its final (or best) weights loaded.
        splits: the run's ``DatasetSplits`` (``train``, ``val`` or None, ``test``,
            ``class_counts``).
        device: where the model runs.
    """

    cfg: CfgNode
    model: nn.Module
    splits: object
    device: torch.device

    @property
    def class_counts(self):
        """Training images per class."""
        return self.splits.class_counts

    @property
    def run_dir(self) -> RunDir:
        """The run folder (``cfg.OUTPUT_DIR``)."""
        return RunDir(self.cfg.OUTPUT_DIR)

    def loader(self, dataset):
        """The evaluation loader of ``dataset`` (TEST.BATCH_SIZE, this rank's shard)."""
        return split_loader(self.cfg, dataset, self.device)

    def on_selection_and_test(self, compute: Callable, what: str) -> Tuple[str, object, object]:
        """``compute(dataset)`` on the split that chooses ``what`` and on the test split.

        The choice is made on validation. Without a validation split it falls back to the
        test split, said loudly on stderr, and the returned name ("val" or "test") lets the
        report record it. Returns ``(selected_on, on_selection, on_test)``.
        """
        on_test = compute(self.splits.test)
        if self.splits.val is not None:
            return "val", compute(self.splits.val), on_test
        print(
            "!" * 78 + f"\nWARNING: NO VALIDATION SPLIT: {what} is chosen on the TEST split, so "
            "the test numbers\nbelow are optimistic. Set DATASETS.VAL_SOURCE (or a val list) to "
            "choose it on validation.\n" + "!" * 78,
            file=sys.stderr,
            flush=True,
        )
        return "test", on_test, on_test


class RunEvaluator:
    """One step of the final evaluation.

    Args:
        cfg: the run's config (read what the step needs in ``__init__``).
    """

    def __init__(self, cfg: CfgNode):
        self.cfg = cfg

    @classmethod
    def applies(cls, cfg: CfgNode, model: nn.Module) -> bool:
        """Whether this step has anything to do for ``model`` under ``cfg``.

        May raise ``ConfigError`` when the config asks for the step on a model that cannot
        take it.
        """
        return True

    def check_data(self, splits) -> None:
        """Called before training: raise ``ConfigError`` (e.g. ``DatasetError``) when the
        run's data (``DatasetSplits``) cannot give this step's numbers, so that the run stops
        before training rather than after it."""

    def __call__(self, ctx: EvaluationContext, results: Dict) -> Dict:
        """The entries this step adds to ``results`` (which it may read, not modify)."""
        raise NotImplementedError


def build_evaluators(cfg: CfgNode, model: nn.Module) -> List[RunEvaluator]:
    """The evaluators of a run: the applicable defaults, then ``TEST.EXTRA_EVALUATORS``.

    Raises:
        ConfigError: an unknown evaluator name (with the closest registered ones).
    """
    evaluators = []
    for name in DEFAULT_EVALUATORS:
        cls = EVALUATOR_REGISTRY.get(name)
        if cls.applies(cfg, model):
            evaluators.append(cls(cfg))
    for name in cfg.TEST.EXTRA_EVALUATORS:
        cls = lookup(EVALUATOR_REGISTRY, name, "TEST.EXTRA_EVALUATORS")
        if cls.applies(cfg, model):
            evaluators.append(cls(cfg))
    return evaluators


def run_evaluators(
    evaluators: List[RunEvaluator], ctx: EvaluationContext, results: Dict = None
) -> Dict:
    """Run ``evaluators`` in order, merging each one's entries into ``results``.

    A dict entry that is already present (e.g. ``"router"``, ``"warnings"``) is merged one
    level deep: a mapping is updated, a list extended; anything else is replaced.
    """
    results = {} if results is None else results
    for evaluator in evaluators:
        for key, value in evaluator(ctx, results).items():
            old = results.get(key)
            if isinstance(old, dict) and isinstance(value, dict):
                old.update(value)
            elif isinstance(old, list) and isinstance(value, list):
                old.extend(value)
            else:
                results[key] = value
    return results
