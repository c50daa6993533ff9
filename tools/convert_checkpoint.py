#!/usr/bin/env python
"""Convert a checkpoint of the original RIDE or classifier-balancing code for ride_dive.

    python tools/convert_checkpoint.py --from ride RIDE_checkpoint.pth \
        --config-file configs/CIFAR100-LT/ride_4e_r32_if100.yaml out.pth
    python tools/convert_checkpoint.py --from decoupling final_model_checkpoint.pth \
        --config-file configs/ImageNet-LT/crt_x50.yaml out.pth
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS out.pth

Trailing ``KEY VALUE`` pairs override the config, as for train_net.py (e.g.
``MODEL.RIDE.NUM_EXPERTS 3``). Nothing in the source file is executed: it is read with
``torch.load(weights_only=True)``, foreign objects (the RIDE config, NumPy scalars, paths)
becoming inert records. See ``ride_dive.checkpoint.importers``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.checkpoint.importers import IMPORTERS, convert_checkpoint  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.engine.cli import run_tool  # noqa: E402


def main(args) -> dict:
    cfg = setup_cfg(args.config_file, args.opts)
    result = convert_checkpoint(args.source, args.source_format, cfg, args.output)
    meta = result["meta"]
    experts = meta["file"].get("num_experts")
    print(
        f"Converted {args.source} ({meta['converted_from']}, {meta['num_classes']} classes"
        f"{f', {experts} experts' if experts else ''}) -> {args.output}"
    )
    for note in meta["notes"]:
        print(f"  note: {note}")
    if meta["inert_globals"]:
        print(f"  read as inert data, never run: {', '.join(meta['inert_globals'])}")
    print(
        f"Evaluate: python tools/train_net.py --config-file {args.config_file} --eval-only "
        f"MODEL.WEIGHTS {args.output}"
    )
    return result


def cli(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument(
        "--from",
        dest="source_format",
        required=True,
        metavar="FORMAT",
        help=f"format of the source file: {', '.join(IMPORTERS)}",
    )
    parser.add_argument(
        "--config-file",
        required=True,
        metavar="FILE",
        help="the ride_dive config the weights are for",
    )
    parser.add_argument("source", help="the checkpoint of the original code")
    parser.add_argument("output", help="where to write the ride_dive checkpoint")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides as KEY VALUE pairs"
    )
    args = parser.parse_args(argv)
    return run_tool(main, args)


if __name__ == "__main__":
    sys.exit(cli())
