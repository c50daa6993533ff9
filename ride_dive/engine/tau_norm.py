"""tau-normalisation of a trained model's classifier, with tau chosen on validation.

Used by ``tools/tau_norm.py`` and by pipeline stages of ``KIND: tau_norm``. The sweep runs
on the validation split; only without one is tau chosen on the test split, which is said
loudly (stderr) and recorded (``"selected_on": "test"``).
"""
import os
import sys
from typing import Dict, Optional, Sequence

from ..checkpoint import Checkpointer
from ..config import CfgNode, ConfigError
from ..data import build_datasets, build_test_loader
from ..evaluation import (
    DEFAULT_TAUS,
    collect_features,
    save_results_json,
    select_tau,
    tau_norm_sweep,
)
from ..modeling import build_model
from ..utils import comm
from ..utils.env import amp_dtype, resolve_device, seed_all

__all__ = ["run_tau_norm", "format_tau_table"]


def format_tau_table(rows, title: str) -> str:
    """The sweep as text: tau, top-1 / many / medium / few per row."""
    lines = [title, f"{'tau':>5} {'top1':>7} {'many':>7} {'medium':>7} {'few':>7}"]
    for r in rows:
        cells = [f"{r[k]:7.2f}" if k in r else f"{'-':>7}"
                 for k in ("top1", "many", "medium", "few")]
        lines.append(f"{r['tau']:5.1f} " + " ".join(cells))
    return "\n".join(lines)


def run_tau_norm(cfg: CfgNode, taus: Sequence[float] = DEFAULT_TAUS,
                 output_dir: Optional[str] = None) -> Dict:
    """Sweep tau on validation, report the test numbers of the best tau.

    Args:
        cfg: the stage-1 config with ``MODEL.WEIGHTS`` (a model with a ``LinearHead``).
        taus: the values swept.
        output_dir: where ``tau_norm.json`` goes (default ``cfg.OUTPUT_DIR``).

    Returns:
        ``{"selected_on", "tau", "sweep", "test", "test_tau0", "weights"}``; ``test`` holds
        top-1 / many / medium / few of the chosen tau on the test split.
    """
    if not cfg.MODEL.WEIGHTS:
        raise ConfigError("tau-norm needs the stage-1 weights: MODEL.WEIGHTS <model_final.pth>")
    if not os.path.isfile(cfg.MODEL.WEIGHTS):
        raise FileNotFoundError(f"MODEL.WEIGHTS not found: {cfg.MODEL.WEIGHTS}")
    seed_all(cfg.SEED)
    device = resolve_device(cfg.MODEL.DEVICE)
    splits = build_datasets(cfg)
    model = build_model(cfg, splits.class_counts)
    Checkpointer(model, "").load(cfg.MODEL.WEIGHTS, checkpointables=[])

    def features(dataset):
        loader = build_test_loader(cfg, dataset, num_replicas=comm.get_world_size(),
                                   rank=comm.get_rank(), device=device)
        return collect_features(model, loader, device, amp_dtype(cfg))

    groups = (cfg.TEST.MANY_THRESHOLD, cfg.TEST.FEW_THRESHOLD)
    counts = splits.class_counts
    test_features = features(splits.test)
    if splits.val is not None:
        selected_on, select_features = "val", features(splits.val)
    else:
        selected_on, select_features = "test", test_features
        print("!" * 78 + "\nWARNING: NO VALIDATION SPLIT: tau is chosen on the TEST split, so "
              "the test numbers\nbelow are optimistic. Set DATASETS.VAL_SOURCE (or a val list) "
              "to choose it on validation.\n" + "!" * 78, file=sys.stderr, flush=True)
    sweep = tau_norm_sweep(model.head, *select_features, counts, taus, *groups)
    best = select_tau(sweep)
    test = tau_norm_sweep(model.head, *test_features, counts, [best["tau"], 0.0], *groups)
    report = {"selected_on": selected_on, "tau": best["tau"], "sweep": sweep,
              "test": test[0], "test_tau0": test[1], "weights": cfg.MODEL.WEIGHTS}
    if comm.is_main_process():
        print(format_tau_table(sweep, f"tau-norm sweep on the {selected_on} split "
                                      f"({len(select_features[1])} images)"))
        print(f"\nbest tau on {selected_on}: {best['tau']:g} (top-1 {best['top1']:.2f})")
        print(format_tau_table(test, "test split: chosen tau, and tau = 0 (raw W, no bias) "
                                     "for reference"))
        path = os.path.join(output_dir or cfg.OUTPUT_DIR, "tau_norm.json")
        save_results_json(report, path)
        print(f"Wrote {path}", flush=True)
    return report
