#!/usr/bin/env python
"""tau-normalisation of a trained model's classifier, with tau chosen on validation.

    python tools/tau_norm.py --config-file configs/FashionMNIST-LT/ce_r32.yaml \
        MODEL.WEIGHTS output/fmnist_lt/ce_r32/model_final.pth

Sweeps tau = 0, 0.1, ..., 2.0 (``--taus``) on the validation split, prints the sweep
(top-1 / many / medium / few per tau), picks the best validation tau and reports the test
numbers for it. Without a validation split it has to choose on the test split: it says so
loudly and records ``"selected_on": "test"``. Writes ``tau_norm.json`` to ``--output``
(default: OUTPUT_DIR) and nothing else, so pointing it at a trained run's folder leaves that
run's files alone. The model needs a ``LinearHead``.

This runs the ``TauNormSweep`` evaluator alone; a training or ``--eval-only`` run gets the
same with ``TEST.TAU_NORM_SWEEP True`` (results.json's ``"tau_norm"``).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.checkpoint import load_trained_model  # noqa: E402
from ride_dive.config import ConfigError  # noqa: E402
from ride_dive.data import build_datasets  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.engine.cli import run_tool  # noqa: E402
from ride_dive.evaluation import (  # noqa: E402
    DEFAULT_TAUS,
    EVALUATOR_REGISTRY,
    EvaluationContext,
    build_evaluators,
    run_evaluators,
)
from ride_dive.utils.env import resolve_device, seed_all  # noqa: E402
from ride_dive.utils.logger import setup_logger  # noqa: E402


def _taus(text: str):
    try:
        taus = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--taus must be comma-separated numbers: {text!r}")
    if not taus or min(taus) < 0:
        raise argparse.ArgumentTypeError(f"--taus must be numbers >= 0: {text!r}")
    return taus


def main(args) -> dict:
    opts = list(args.opts) + [
        "TEST.TAU_NORM_SWEEP",
        "True",
        "TEST.TAU_NORM_TAUS",
        str(list(args.taus)),
    ]
    if args.output:
        opts += ["OUTPUT_DIR", args.output]
    cfg = setup_cfg(args.config_file, opts)
    if not cfg.MODEL.WEIGHTS:
        raise ConfigError("tau-norm needs the stage-1 weights: MODEL.WEIGHTS <model_final.pth>")
    if not os.path.isfile(cfg.MODEL.WEIGHTS):
        raise FileNotFoundError(f"MODEL.WEIGHTS not found: {cfg.MODEL.WEIGHTS}")
    setup_logger()
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    seed_all(cfg.SEED)
    device = resolve_device(cfg.MODEL.DEVICE)
    splits = build_datasets(cfg)
    model = load_trained_model(cfg, splits.class_counts, device)
    sweep = EVALUATOR_REGISTRY.get("TauNormSweep")
    evaluators = [e for e in build_evaluators(cfg, model) if isinstance(e, sweep)]
    results = run_evaluators(evaluators, EvaluationContext(cfg, model, splits, device))
    print(f"Wrote {os.path.join(cfg.OUTPUT_DIR, 'tau_norm.json')}", flush=True)
    return results["tau_norm"]


def cli(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", default="", metavar="FILE")
    parser.add_argument(
        "--taus",
        type=_taus,
        default=list(DEFAULT_TAUS),
        help="comma-separated taus (default 0,0.1,...,2.0)",
    )
    parser.add_argument(
        "--output", default="", metavar="DIR", help="where tau_norm.json goes (default: OUTPUT_DIR)"
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="config overrides as KEY VALUE pairs; MODEL.WEIGHTS is required",
    )
    args = parser.parse_args(argv)
    return run_tool(main, args, extra_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(cli())
