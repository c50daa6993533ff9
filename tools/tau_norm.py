#!/usr/bin/env python
"""tau-normalisation of a trained model's classifier, with tau chosen on validation.

    python tools/tau_norm.py --config-file configs/FashionMNIST-LT/ce_r32.yaml \
        MODEL.WEIGHTS output/fmnist_lt/ce_r32/model_final.pth

Sweeps tau = 0, 0.1, ..., 2.0 (``--taus``) on the validation split, prints the sweep
(top-1 / many / medium / few per tau), picks the best validation tau and reports the test
numbers for it. Without a validation split it has to choose on the test split: it says so
loudly and records ``"selected_on": "test"``. Writes ``tau_norm.json`` to ``--output``
(default: OUTPUT_DIR). The model needs a ``LinearHead``.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointMismatchError,
    Checkpointer,
)
from ride_dive.config import ConfigError  # noqa: E402
from ride_dive.data import build_datasets, build_test_loader  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.evaluation import (  # noqa: E402
    DEFAULT_TAUS,
    collect_features,
    save_results_json,
    select_tau,
    tau_norm_sweep,
)
from ride_dive.modeling import build_model  # noqa: E402
from ride_dive.utils.env import amp_dtype, resolve_device, seed_all  # noqa: E402
from ride_dive.utils.logger import setup_logger  # noqa: E402


def _taus(text: str):
    try:
        taus = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--taus must be comma-separated numbers: {text!r}")
    if not taus or min(taus) < 0:
        raise argparse.ArgumentTypeError(f"--taus must be numbers >= 0: {text!r}")
    return taus


def _table(rows, title: str) -> str:
    lines = [title, f"{'tau':>5} {'top1':>7} {'many':>7} {'medium':>7} {'few':>7}"]
    for r in rows:
        cells = [f"{r[k]:7.2f}" if k in r else f"{'-':>7}" for k in ("top1", "many", "medium",
                                                                    "few")]
        lines.append(f"{r['tau']:5.1f} " + " ".join(cells))
    return "\n".join(lines)


def main(args) -> dict:
    cfg = setup_cfg(args.config_file, args.opts)
    if not cfg.MODEL.WEIGHTS:
        raise ConfigError("tau_norm.py needs the stage-1 weights: MODEL.WEIGHTS <model_final.pth>")
    if not os.path.isfile(cfg.MODEL.WEIGHTS):
        raise FileNotFoundError(f"MODEL.WEIGHTS not found: {cfg.MODEL.WEIGHTS}")
    setup_logger()
    seed_all(cfg.SEED)
    device = resolve_device(cfg.MODEL.DEVICE)
    splits = build_datasets(cfg)
    model = build_model(cfg, splits.class_counts)
    Checkpointer(model, "").load(cfg.MODEL.WEIGHTS, checkpointables=[])

    def features(dataset):
        return collect_features(model, build_test_loader(cfg, dataset, device=device), device,
                                amp_dtype(cfg))

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
    sweep = tau_norm_sweep(model.head, *select_features, counts, args.taus, *groups)
    best = select_tau(sweep)
    test = tau_norm_sweep(model.head, *test_features, counts, [best["tau"], 0.0], *groups)
    print(_table(sweep, f"tau-norm sweep on the {selected_on} split "
                        f"({len(select_features[1])} images)"))
    print(f"\nbest tau on {selected_on}: {best['tau']:g} (top-1 {best['top1']:.2f})")
    print(_table(test, "test split: chosen tau, and tau = 0 (raw W, no bias) for reference"))
    report = {"selected_on": selected_on, "tau": best["tau"], "sweep": sweep,
              "test": test[0], "test_tau0": test[1], "weights": cfg.MODEL.WEIGHTS}
    out_dir = args.output or cfg.OUTPUT_DIR
    path = os.path.join(out_dir, "tau_norm.json")
    save_results_json(report, path)
    print(f"Wrote {path}")
    return report


def cli(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", default="", metavar="FILE")
    parser.add_argument("--taus", type=_taus, default=list(DEFAULT_TAUS),
                        help="comma-separated taus (default 0,0.1,...,2.0)")
    parser.add_argument("--output", default="", metavar="DIR",
                        help="where tau_norm.json goes (default: OUTPUT_DIR)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs; MODEL.WEIGHTS is required")
    args = parser.parse_args(argv)
    try:
        main(args)
    except (ConfigError, CheckpointError, CheckpointMismatchError, FileNotFoundError,
            ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
