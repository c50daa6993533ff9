"""Evaluation: top-k, per-class and many/medium/few accuracy, calibration, label shift,
reporting, and for multi-expert models each expert's accuracy and the router's
accuracy/compute sweep; a run's final evaluation as a list of evaluators
(``build_evaluators``, ``EVALUATOR_REGISTRY``)."""

# gather_predictions is re-exported for existing callers; it lives in utils.comm.
from ..utils.comm import gather_predictions
from . import default_evaluators  # noqa: F401  (registers the default evaluators)
from .evaluator import (
    ClassificationEvaluator,
    compute_classification_metrics,
    inference_on_dataset,
    predict_on_dataset,
)
from .evaluators import (
    DEFAULT_EVALUATORS,
    EVALUATOR_REGISTRY,
    EvaluationContext,
    RunEvaluator,
    build_evaluators,
    run_evaluators,
)
from .expert_check import expert_competence_warning
from .label_shift import (
    DEFAULT_RHOS,
    format_label_shift_table,
    label_shift_report,
    label_shift_rows,
    post_compensate,
    shifted_class_counts,
    shifted_indices,
    trained_with_prior_logits,
)
from .metrics import (
    brier,
    expected_calibration_error,
    nll,
    per_class_accuracy,
    reliability_bins,
    shot_group_accuracy,
    topk_accuracy,
    topk_correct,
)
from .multi_expert import (
    ExpertOutputsEvaluator,
    expert_count_macs,
    experts_used_distribution,
    has_router,
    router_tradeoff,
    select_router_threshold,
)
from .posthoc_adjustment import (
    PosthocLogitAdjustment,
    adjust_logits,
    format_posthoc_table,
    posthoc_sweep,
)
from .reporting import (
    format_results_table,
    format_router_table,
    plot_router_tradeoff,
    save_results_json,
)
from .split_evaluation import (
    evaluate,
    inference_gmacs,
    router_evaluation,
    select_router_threshold_on_val,
    split_loader,
)
from .statistics import format_mean_std, format_paired, paired_difference, t_quantile_975
from .tau_norm import DEFAULT_TAUS, collect_features, format_tau_table, select_tau, tau_norm_sweep

__all__ = [
    "DEFAULT_EVALUATORS",
    "DEFAULT_RHOS",
    "DEFAULT_TAUS",
    "EVALUATOR_REGISTRY",
    "EvaluationContext",
    "RunEvaluator",
    "build_evaluators",
    "evaluate",
    "format_tau_table",
    "inference_gmacs",
    "router_evaluation",
    "run_evaluators",
    "select_router_threshold_on_val",
    "split_loader",
    "collect_features",
    "select_tau",
    "tau_norm_sweep",
    "PosthocLogitAdjustment",
    "adjust_logits",
    "format_posthoc_table",
    "posthoc_sweep",
    "ClassificationEvaluator",
    "ExpertOutputsEvaluator",
    "compute_classification_metrics",
    "gather_predictions",
    "inference_on_dataset",
    "predict_on_dataset",
    "format_label_shift_table",
    "label_shift_report",
    "label_shift_rows",
    "post_compensate",
    "shifted_class_counts",
    "shifted_indices",
    "trained_with_prior_logits",
    "brier",
    "expected_calibration_error",
    "nll",
    "per_class_accuracy",
    "reliability_bins",
    "shot_group_accuracy",
    "t_quantile_975",
    "topk_accuracy",
    "topk_correct",
    "expert_competence_warning",
    "expert_count_macs",
    "experts_used_distribution",
    "format_mean_std",
    "format_paired",
    "format_results_table",
    "format_router_table",
    "has_router",
    "plot_router_tradeoff",
    "router_tradeoff",
    "paired_difference",
    "save_results_json",
    "select_router_threshold",
]
