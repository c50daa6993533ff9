"""A new evaluator in one file: the worked example of docs/ARCHITECTURE.md.

Adds the lowest per-class test accuracy, and its class, to ``results.json``:
``"worst_class": {"class": c, "top1": accuracy}``. It reads the per-class accuracies the
default ``TestClassification`` evaluator put into the results before it, so it runs no
model. Enable it with ``TEST.EXTRA_EVALUATORS: ["WorstClassAccuracy"]``.

Load it with ``tools/train_net.py --plugin docs/examples/label_smoothing/worst_class_evaluator.py``.
"""

from typing import Dict

from ride_dive.evaluation import EVALUATOR_REGISTRY, RunEvaluator


@EVALUATOR_REGISTRY.register()
class WorstClassAccuracy(RunEvaluator):
    """The class with the lowest test accuracy (classes absent from the test set skipped;
    ties: the lower class index)."""

    def __call__(self, ctx, results: Dict) -> Dict:
        scored = [
            (accuracy, c) for c, accuracy in enumerate(results["per_class"]) if accuracy is not None
        ]
        accuracy, worst = min(scored)
        return {"worst_class": {"class": worst, "top1": accuracy}}
