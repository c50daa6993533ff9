#!/usr/bin/env python
"""A teacher's virtual-example distribution and DiVE's choice of temperature (docs/METHODS.md 6).

    python tools/analyze_virtual_examples.py \
        --config-file output/c100_lt/bsce_r32_if100/config.yaml \
        MODEL.WEIGHTS output/c100_lt/bsce_r32_if100/model_final.pth

Runs the teacher over its (unaugmented) training split, prints the Many / Medium / Few
averages of V_c = sum_i softmax(p * z_i / tau)_c for tau = 1..10 and p = 1, 0.5 (and
DISTILL.POWER) next to the real counts', and the tau the rule of thumb picks for each p.
Writes DIR/virtual_examples.json and DIR/virtual_examples.png (DIR: --output, else the
config's OUTPUT_DIR). A RIDE teacher is analysed as its full ensemble (router off).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.analysis import (  # noqa: E402
    TEMPERATURES,
    format_virtual_example_table,
    plot_virtual_examples,
    training_set_distributions,
)
from ride_dive.checkpoint import load_trained_model  # noqa: E402
from ride_dive.config import ConfigError  # noqa: E402
from ride_dive.data import build_datasets  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.engine.cli import run_tool  # noqa: E402
from ride_dive.evaluation import save_results_json  # noqa: E402
from ride_dive.utils.env import resolve_device, seed_all  # noqa: E402
from ride_dive.utils.logger import setup_logger  # noqa: E402

# The teacher's output is its full ensemble's mean logits, as when it teaches.
_NO_ROUTER = ["MODEL.ROUTER.ENABLED", "False", "MODEL.ROUTER.TRAIN", "False"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  python tools/analyze_virtual_examples.py --config-file "
        "configs/FashionMNIST-LT/bsce_r32.yaml MODEL.WEIGHTS out/bsce/model_final.pth",
    )
    parser.add_argument(
        "--config-file",
        default="",
        metavar="FILE",
        help="the teacher's config (e.g. its run's config.yaml)",
    )
    parser.add_argument(
        "--output",
        default="",
        metavar="DIR",
        help="where to write the JSON and PNG (default: OUTPUT_DIR)",
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="config overrides as KEY VALUE pairs; MODEL.WEIGHTS is required",
    )
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> dict:
    cfg = setup_cfg(args.config_file, list(args.opts) + _NO_ROUTER)
    if not cfg.MODEL.WEIGHTS:
        raise ConfigError(
            "the analysis needs the teacher's weights: MODEL.WEIGHTS "
            "<checkpoint.pth> (e.g. its run's model_final.pth)."
        )
    if not os.path.isfile(cfg.MODEL.WEIGHTS):  # before the (possibly long) dataset build
        raise FileNotFoundError(f"MODEL.WEIGHTS not found: {cfg.MODEL.WEIGHTS}")
    out_dir = args.output or cfg.OUTPUT_DIR
    # Console only: the default OUTPUT_DIR is the teacher's run, whose log stays untouched.
    setup_logger()
    seed_all(cfg.SEED)
    device = resolve_device(cfg.MODEL.DEVICE)
    splits = build_datasets(cfg)
    model = load_trained_model(cfg, splits.class_counts)
    # p = 1 and DiVE's 0.5, plus the config's own DISTILL.POWER if it differs.
    powers = sorted({1.0, 0.5, float(cfg.DISTILL.POWER)}, reverse=True)
    table = training_set_distributions(
        cfg, model, splits.train, splits.class_counts, device, TEMPERATURES, powers
    )
    table["weights"] = cfg.MODEL.WEIGHTS
    table["num_train_images"] = len(splits.train)
    print(format_virtual_example_table(table), flush=True)
    json_path = os.path.join(out_dir, "virtual_examples.json")
    save_results_json(table, json_path)
    print(f"Wrote {json_path}")
    png_path = os.path.join(out_dir, "virtual_examples.png")
    if plot_virtual_examples(table, png_path):
        print(f"Wrote {png_path}")
    else:
        print("matplotlib is not installed: no plot")
    return table


def cli(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(main, args)


if __name__ == "__main__":
    sys.exit(cli())
