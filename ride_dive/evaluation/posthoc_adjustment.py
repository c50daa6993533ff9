"""Post-hoc logit adjustment (Menon et al. 2021; docs/METHODS.md 10): ``z - tau * log pi``.

A model trained with plain cross-entropy estimates the training posterior ``p(y|x)``;
subtracting ``tau * log pi`` (``pi`` the training class prior ``n / N``) moves its argmax
towards the label-balanced one (``tau = 1`` is the Bayes correction). ``tau`` is swept and
chosen on the validation split, never on test: only when a run has no validation split is
it chosen on the test split, and the result says so (``"selected_on": "test"``). The logits
do not depend on ``tau``, so each split is predicted once and every ``tau`` costs one
subtraction.

Run it with ``TEST.POSTHOC_LA_SWEEP True`` (``TEST.POSTHOC_LA_TAUS``), in training or with
``--eval-only`` on a trained model's weights; any model works (a RIDE model's ensemble
logits too). The report is ``results.json["posthoc_la"]`` and ``OUTPUT_DIR/posthoc_la.json``.
"""

from typing import Dict, List, Sequence

import torch

from ..utils import comm
from ..utils.env import eval_amp_dtype
from .evaluator import compute_classification_metrics, predict_on_dataset
from .evaluators import EVALUATOR_REGISTRY, RunEvaluator
from .reporting import save_results_json

__all__ = ["PosthocLogitAdjustment", "adjust_logits", "posthoc_sweep", "format_posthoc_table"]

_GROUPS = ("top1", "many", "medium", "few")


def adjust_logits(logits: torch.Tensor, train_counts: Sequence[int], tau: float) -> torch.Tensor:
    """``logits - tau * log(n / N)`` for ``(N, C)`` logits and the training counts ``n``."""
    counts = torch.as_tensor(train_counts, dtype=torch.float64)
    log_prior = (counts / counts.sum()).log().to(logits.dtype)
    return logits - float(tau) * log_prior


def posthoc_sweep(
    logits: torch.Tensor,
    labels: torch.Tensor,
    train_counts: Sequence[int],
    taus: Sequence[float],
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> List[Dict]:
    """top-1 / many / medium / few of the adjusted logits for every ``tau``."""
    rows = []
    for tau in taus:
        metrics = compute_classification_metrics(
            adjust_logits(logits, train_counts, tau),
            labels,
            train_counts,
            many_threshold,
            few_threshold,
        )
        rows.append({"tau": float(tau), **{k: metrics[k] for k in _GROUPS if k in metrics}})
    return rows


def format_posthoc_table(rows: Sequence[Dict], title: str) -> str:
    """The sweep as text: tau, top-1 / many / medium / few per row."""
    lines = [title, f"{'tau':>5} {'top1':>7} {'many':>7} {'medium':>7} {'few':>7}"]
    for r in rows:
        cells = [f"{r[k]:7.2f}" if k in r else f"{'-':>7}" for k in _GROUPS]
        lines.append(f"{r['tau']:5.2f} " + " ".join(cells))
    return "\n".join(lines)


@EVALUATOR_REGISTRY.register()
class PosthocLogitAdjustment(RunEvaluator):
    """Post-hoc logit adjustment with tau chosen on validation (``TEST.POSTHOC_LA_SWEEP``).

    Reports ``"posthoc_la"``: ``{"selected_on", "tau", "sweep", "test", "test_tau0"}``
    (``sweep`` on the selection split; ``test`` at the chosen tau; ``test_tau0`` the model
    unadjusted, for reference). Ties go to the smaller tau.
    """

    @classmethod
    def applies(cls, cfg, model) -> bool:
        return bool(cfg.TEST.POSTHOC_LA_SWEEP)

    def __call__(self, ctx, results) -> Dict:
        cfg = ctx.cfg
        groups = (cfg.TEST.MANY_THRESHOLD, cfg.TEST.FEW_THRESHOLD)
        counts = ctx.class_counts

        def predict(dataset):
            return predict_on_dataset(
                ctx.model, ctx.loader(dataset), ctx.device, eval_amp_dtype(cfg)
            )

        selected_on, select, test = ctx.on_selection_and_test(predict, "the post-hoc tau")
        sweep = posthoc_sweep(*select, counts, list(cfg.TEST.POSTHOC_LA_TAUS), *groups)
        best = max(sweep, key=lambda r: (r["top1"], -r["tau"]))
        chosen, unadjusted = posthoc_sweep(*test, counts, [best["tau"], 0.0], *groups)
        report = {
            "selected_on": selected_on,
            "tau": best["tau"],
            "sweep": sweep,
            "test": chosen,
            "test_tau0": unadjusted,
        }
        if comm.is_main_process():
            title = (
                f"post-hoc logit adjustment on the {selected_on} split ({len(select[1])} images)"
            )
            print(format_posthoc_table(sweep, title))
            print(f"\nbest tau on {selected_on}: {best['tau']:g} (top-1 {best['top1']:.2f})")
            print(
                format_posthoc_table(
                    [chosen, unadjusted], "test split: chosen tau, and tau = 0 (unadjusted)"
                ),
                flush=True,
            )
            save_results_json(report, ctx.run_dir.posthoc_la)
        return {"posthoc_la": report}
