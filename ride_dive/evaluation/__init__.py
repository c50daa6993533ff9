"""Evaluation: top-k, per-class and many/medium/few accuracy, calibration, reporting."""
from .evaluator import (
    ClassificationEvaluator,
    compute_classification_metrics,
    gather_predictions,
    inference_on_dataset,
)
from .metrics import (
    brier,
    expected_calibration_error,
    nll,
    per_class_accuracy,
    shot_group_accuracy,
    topk_accuracy,
    topk_correct,
)
from .reporting import format_results_table, save_results_json

__all__ = [
    "ClassificationEvaluator",
    "compute_classification_metrics",
    "gather_predictions",
    "inference_on_dataset",
    "brier",
    "expected_calibration_error",
    "nll",
    "per_class_accuracy",
    "shot_group_accuracy",
    "topk_accuracy",
    "topk_correct",
    "format_results_table",
    "save_results_json",
]
