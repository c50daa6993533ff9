#!/usr/bin/env python
"""Evaluate a finished run again: calibration, label shift (docs/METHODS.md 7) and figures.

    python tools/evaluate_run.py output/fmnist_lt/bsce_r32_s0 --label-shift --plots
    python tools/evaluate_run.py output/fmnist_lt/bsce_r32_s0 --from-results   # no model
    python tools/evaluate_run.py --aggregate output/fmnist_lt/{ce,bsce}_r32_s{0,1,2}

Loads RUN_DIR/config.yaml and RUN_DIR/model_final.pth (weights only; ``--weights`` for
another file), runs the model once over the test split and writes to DIR (``--output``,
default RUN_DIR):

- ``evaluation.json``: top-1/top-5/many/medium/few/per-class, ECE (TEST.ECE_BINS bins),
  NLL, Brier, the reliability bins (count, mean confidence, accuracy) and the training
  counts; always.
- ``label_shift.json`` and ``label_shift.md`` (``--label-shift``): top-1 and shot groups
  on Forward/Backward rho = 50, 25, 10, 5, 2 and Uniform, without and with
  post-compensation, all subsets of the same logits.
- ``reliability.png`` and ``per_class_vs_train_count.png`` (``--plots``; needs matplotlib).

A model with an expert router is evaluated as its full ensemble (router off), and the
JSON says so. NCM heads are fitted on the training split first, as in training; a run
without its own weights (NCM) needs ``--weights`` (the stage-1 model_final.pth).
``--from-results`` draws only the per-class figure, from RUN_DIR/results.json and the
training counts of the config's dataset (no model). ``--aggregate`` reads the JSON files of
several runs and prints mean ± std over seeds (run directories that differ only in a
``_s<N>`` suffix are seeds of one method) as Markdown tables.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.checkpoint import load_trained_model  # noqa: E402
from ride_dive.checkpoint.serialization import atomic_write_text  # noqa: E402
from ride_dive.config import ConfigError  # noqa: E402
from ride_dive.data import build_datasets, build_test_loader  # noqa: E402
from ride_dive.data.datasets.base import class_counts_of  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.engine.cli import run_tool  # noqa: E402
from ride_dive.evaluation import (  # noqa: E402
    EvaluationContext,
    compute_classification_metrics,
    format_label_shift_table,
    label_shift_report,
    predict_on_dataset,
    reliability_bins,
    save_results_json,
    trained_with_prior_logits,
)
from ride_dive.evaluation.default_evaluators import FitEvaluationHeads  # noqa: E402
from ride_dive.evaluation.figures import (  # noqa: E402
    plot_per_class_vs_train_count,
    plot_reliability_diagram,
)
from ride_dive.evaluation.label_shift import (  # noqa: E402
    check_label_shift_test_counts,
)
from ride_dive.evaluation.seed_tables import EVALUATION, LABEL_SHIFT, aggregate  # noqa: E402
from ride_dive.utils.cpu_allocator import apply_cpu_memory_setting  # noqa: E402
from ride_dive.utils.env import eval_amp_dtype, resolve_device, seed_all  # noqa: E402
from ride_dive.utils.logger import setup_logger  # noqa: E402
from ride_dive.utils.plotting import pyplot  # noqa: E402
from ride_dive.utils.run_dir import RunDir, ensure_writable_dir  # noqa: E402

# What this tool adds to a run folder (or to --output), beside the run's own files.
LABEL_SHIFT_TABLE = "label_shift.md"
RELIABILITY_PLOT = "reliability.png"
PER_CLASS_PLOT = "per_class_vs_train_count.png"

_NO_ROUTER = ["MODEL.ROUTER.ENABLED", "False", "MODEL.ROUTER.TRAIN", "False"]
_PRIOR_CHOICES = {"auto": None, "yes": True, "no": False}
_NCM_CAVEAT = (
    "NCM scores -||g(x) - mu_c||^2 lie in [-4, 0] and are not log-probabilities "
    "(no temperature): ECE, NLL, Brier and the PC rows are not meaningful; the "
    "accuracies without PC are"
)


def _load_cfg(args):
    config = RunDir(args.run_dirs[0]).config
    if not os.path.isfile(config):
        raise FileNotFoundError(f"{config} not found: RUN_DIR must be a run's output directory")
    cfg = setup_cfg(config, args.opts)
    router = cfg.MODEL.ROUTER.ENABLED
    if router:
        cfg = setup_cfg(config, list(args.opts) + _NO_ROUTER)
    return cfg, router


def _plot_per_class(cfg, per_class, counts, out_dir, title) -> str:
    path = RunDir(out_dir).path(PER_CLASS_PLOT)
    plot_per_class_vs_train_count(
        per_class, counts, path, cfg.TEST.MANY_THRESHOLD, cfg.TEST.FEW_THRESHOLD, title
    )
    return path


def _run_name(run_dir: str) -> str:
    """``bsce_r32_s0``; a pipeline stage keeps its pipeline: ``ride_dive_pipeline_s0/student``."""
    run_dir = os.path.normpath(run_dir)
    parent = os.path.dirname(run_dir)
    if os.path.isfile(os.path.join(parent, "summary.json")):
        return f"{os.path.basename(parent)}/{os.path.basename(run_dir)}"
    return os.path.basename(run_dir)


def from_results(args) -> dict:
    """The per-class figure from results.json and the dataset's training counts only."""
    run_dir = args.run_dirs[0]
    path = RunDir(run_dir).results
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: did the run finish?")
    with open(path) as f:
        results = json.load(f)
    cfg, _ = _load_cfg(args)
    out_dir = _check_output_folder(args)
    counts = build_datasets(cfg).class_counts
    png = _plot_per_class(
        cfg,
        results["per_class"],
        counts,
        out_dir,
        f"{_run_name(run_dir)}: per-class test accuracy (results.json)",
    )
    print(f"Wrote {png}")
    return {"per_class": results["per_class"], "train_counts": list(counts)}


def _check_output_folder(args) -> str:
    """The folder this tool writes to, checked before any work (exit 2 when unwritable)."""
    if args.output:
        ensure_writable_dir(args.output, "--output", "the evaluation's JSON, tables and figures")
        return args.output
    ensure_writable_dir(
        args.run_dirs[0],
        "RUN_DIR",
        "the evaluation's JSON, tables and figures",
        "Give a writable folder with --output.",
    )
    return args.run_dirs[0]


def evaluate(args) -> dict:
    """Test logits once; the metrics, reliability bins, label shift and figures from them."""
    run_dir = args.run_dirs[0]
    out_dir = _check_output_folder(args)
    cfg, router = _load_cfg(args)
    weights = args.weights or RunDir(run_dir).final_model
    if not os.path.isfile(weights):
        raise FileNotFoundError(
            f"{weights} not found. Give the weights with --weights (an NCM run has none of "
            "its own: use its stage-1 model_final.pth), or use --from-results for the "
            "per-class figure alone"
        )
    setup_logger()  # console only: the run's own log stays untouched
    seed_all(cfg.SEED)
    apply_cpu_memory_setting(cfg)
    device = resolve_device(cfg.MODEL.DEVICE)
    splits = build_datasets(cfg)
    counts = [int(n) for n in splits.class_counts]
    if args.label_shift:  # before the model runs: a test split lacking classes is refused
        check_label_shift_test_counts(class_counts_of(splits.test.labels, len(counts)))
    model = load_trained_model(cfg, counts, weights=weights)
    if FitEvaluationHeads.applies(cfg, model):  # NCM: class means of training features
        FitEvaluationHeads(cfg)(EvaluationContext(cfg, model, splits, device), {})
    loader = build_test_loader(cfg, splits.test, device=device)
    logits, labels = predict_on_dataset(model, loader, device, eval_amp_dtype(cfg))

    prior = _PRIOR_CHOICES[args.trained_with_prior]
    prior = trained_with_prior_logits(cfg, model) if prior is None else prior
    groups = dict(many_threshold=cfg.TEST.MANY_THRESHOLD, few_threshold=cfg.TEST.FEW_THRESHOLD)
    report = {
        "run": run_dir,
        "weights": weights,
        "model": f"{cfg.MODEL.META_ARCHITECTURE}/{cfg.MODEL.BACKBONE.NAME}",
        "loss": cfg.MODEL.LOSS.NAME,
        "trained_with_prior_logits": prior,
    }
    if args.opts:
        report["opts"] = list(args.opts)
    if FitEvaluationHeads.applies(cfg, model):
        report["caveat"] = _NCM_CAVEAT
        print("Note: " + _NCM_CAVEAT)
    if router:
        report["router"] = (
            "the run's model has an expert router; it is off here: the "
            "numbers are the full ensemble's"
        )
        print("Note: " + report["router"])
    report.update(
        compute_classification_metrics(logits, labels, counts, ece_bins=cfg.TEST.ECE_BINS, **groups)
    )
    report["reliability"] = reliability_bins(logits.softmax(dim=1), labels, cfg.TEST.ECE_BINS)
    report["train_counts"] = counts
    out = RunDir(out_dir)
    save_results_json(report, out.path(EVALUATION))
    print(
        f"top-1 {report['top1']:.2f}  ECE {report['ece']:.2f}%  NLL {report['nll']:.4f}  "
        f"Brier {report['brier']:.4f}\nWrote {out.path(EVALUATION)}"
    )
    name = _run_name(run_dir)
    if args.label_shift:
        shift = label_shift_report(logits, labels, counts, prior, **groups)
        shift.update(run=run_dir, weights=weights)
        save_results_json(shift, out.path(LABEL_SHIFT))
        table = f"# Label shift: {name}\n\n" + format_label_shift_table(shift)
        atomic_write_text(out.path(LABEL_SHIFT_TABLE), table)
        print(table + f"Wrote {out.path(LABEL_SHIFT)} and {LABEL_SHIFT_TABLE}")
    if args.plots:
        png = out.path(RELIABILITY_PLOT)
        plot_reliability_diagram(report["reliability"], png, report["ece"], name)
        print(f"Wrote {png}")
        print(
            "Wrote "
            + _plot_per_class(
                cfg, report["per_class"], counts, out_dir, f"{name}: per-class test accuracy"
            )
        )
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a run's output directory (several with --aggregate)",
    )
    parser.add_argument(
        "--label-shift",
        action="store_true",
        help="write label_shift.json / .md (docs/METHODS.md 7)",
    )
    parser.add_argument(
        "--plots",
        action="store_true",
        help="write reliability.png and per_class_vs_train_count.png",
    )
    parser.add_argument(
        "--output",
        default="",
        metavar="DIR",
        help="where the files go (default: RUN_DIR); with --aggregate, a "
        "Markdown file for the tables (default: stdout only)",
    )
    parser.add_argument(
        "--weights",
        default="",
        metavar="FILE",
        help="weights to load instead of RUN_DIR/model_final.pth",
    )
    parser.add_argument(
        "--trained-with-prior",
        choices=sorted(_PRIOR_CHOICES),
        default="auto",
        help="PC form: yes = logits are balanced (PC adds log p_target), no = "
        "they carry the training prior (PC adds log p_target - log p_train); "
        "auto decides from the loss and sampler",
    )
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="no model: the per-class figure from RUN_DIR/results.json",
    )
    parser.add_argument(
        "--aggregate",
        action="store_true",
        help="mean ± std tables over the runs' evaluation/label_shift JSON",
    )
    parser.add_argument(
        "--opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="config overrides as KEY VALUE pairs (last on the line)",
    )
    args = parser.parse_args(argv)
    if len(args.run_dirs) > 1 and not args.aggregate:
        parser.error("several RUN_DIRs only with --aggregate")
    if args.from_results and args.label_shift:
        parser.error("--label-shift needs the model's logits; drop --from-results")
    return args


def main(args: argparse.Namespace):
    if args.aggregate:
        if args.output:  # here a file: the tables
            folder = os.path.dirname(os.path.abspath(args.output))
            ensure_writable_dir(folder, "--output's folder", "the aggregated tables")
        text = aggregate(args.run_dirs)
        print(text, end="")
        if args.output:
            atomic_write_text(args.output, text)
        return text
    if (args.plots or args.from_results) and pyplot() is None:
        raise ConfigError(
            "--plots and --from-results draw PNGs with matplotlib, which is not "
            "installed: pip install 'matplotlib>=3.5' (the [plots] extra)"
        )
    return from_results(args) if args.from_results else evaluate(args)


def cli(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(main, args, extra_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(cli())
