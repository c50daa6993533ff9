#!/usr/bin/env python
r"""Convert a checkpoint of the original RIDE or classifier-balancing code for ride_dive.

    python tools/convert_checkpoint.py --from ride RIDE_checkpoint.pth \
        --config-file configs/CIFAR100-LT/ride_4e_r32_if100.yaml out.pth
    python tools/convert_checkpoint.py --from ride RIDE_EA_checkpoint.pth \
        --config-file configs/CIFAR100-LT/ride_4e_r32_if100_router.yaml out.pth
    python tools/convert_checkpoint.py --from decoupling final_model_checkpoint.pth \
        --config-file configs/ImageNet-LT/crt_x50.yaml out.pth
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS out.pth

Trailing ``KEY VALUE`` pairs override the config, as for train_net.py (e.g.
``MODEL.RIDE.NUM_EXPERTS 3``); the printed evaluation command repeats them. A RIDE file with
expert-assignment routers needs a router config, or --drop-router to keep the experts only.
Nothing in the source file is executed: it is read with ``torch.load(weights_only=True)``,
foreign objects (the RIDE config, NumPy scalars, paths) becoming inert records. See
``ride_dive.checkpoint.importers``.
"""

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.checkpoint.importers import IMPORTERS, convert_checkpoint  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.engine.cli import run_tool  # noqa: E402


def evaluate_command(config_file: str, opts, output: str, router_train: bool = False) -> str:
    """The ``train_net.py --eval-only`` command for the converted file: the conversion's
    config and ``KEY VALUE`` overrides (so that it builds the same model), shell-quoted.

    ``MODEL.WEIGHTS`` given among ``opts`` is replaced by ``output``; a router stage's config
    (``router_train``) is evaluated with ``MODEL.ROUTER.TRAIN False``, as the file holds
    trained routers.
    """
    kept, i = [], 0
    while i < len(opts):
        if opts[i] == "MODEL.WEIGHTS":
            i += 2
            continue
        kept.append(opts[i])
        i += 1
    if router_train:
        kept += ["MODEL.ROUTER.TRAIN", "False"]
    args = ["python", "tools/train_net.py", "--config-file", config_file, "--eval-only"]
    return shlex.join(args + kept + ["MODEL.WEIGHTS", output])


def main(args) -> dict:
    cfg = setup_cfg(args.config_file, args.opts)
    result = convert_checkpoint(
        args.source, args.source_format, cfg, args.output, drop_router=args.drop_router
    )
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
    command = evaluate_command(
        args.config_file, args.opts, args.output, bool(cfg.MODEL.ROUTER.TRAIN)
    )
    print(f"Evaluate: {command}")
    return result


def cli(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        # The examples are commands: keep their lines and continuations as written.
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
    parser.add_argument(
        "--drop-router",
        action="store_true",
        help="convert a RIDE file with expert-assignment routers for a config without a "
        "router, leaving the routers out (every expert then runs; no early exit)",
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
