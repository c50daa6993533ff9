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

from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.engine.tau_norm import run_tau_norm  # noqa: E402
from ride_dive.evaluation import DEFAULT_TAUS  # noqa: E402
from ride_dive.utils.cli import run_tool  # noqa: E402
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
    cfg = setup_cfg(args.config_file, args.opts)
    setup_logger()
    return run_tau_norm(cfg, args.taus, args.output or None)


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
    return run_tool(main, args, extra_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(cli())
