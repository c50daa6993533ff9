#!/usr/bin/env python
"""List, download and evaluate model zoo checkpoints.

    python tools/model_zoo.py list
    python tools/model_zoo.py download FashionMNIST-LT/ride_dive_4e_r32_router.yaml
    python tools/model_zoo.py eval FashionMNIST-LT/ride_dive_4e_r32_router.yaml [KEY VALUE ...]

``eval`` downloads the checkpoint (verified against the manifest's sha256, cached), then
runs ``tools/train_net.py --eval-only`` with the packaged config; results go to
``output/model_zoo_eval/<config>/`` unless ``OUTPUT_DIR`` is given. Mirrors and the cache:
``$RIDE_DIVE_MODEL_ZOO_URL``, ``$RIDE_DIVE_CACHE`` (see docs/MODEL_ZOO_GUIDE.md).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive import model_zoo  # noqa: E402
from ride_dive.engine.cli import run_tool  # noqa: E402
from ride_dive.model_zoo.download import checkpoint_url  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--manifest", help="a manifest file other than the packaged one")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the zoo's entries and their measured accuracy")
    for name, text in (
        ("download", "download and verify one checkpoint"),
        ("eval", "evaluate one checkpoint on its test split"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("name", help="config path relative to configs/, as in `list`")
        if name == "eval":
            s.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p.parse_args(argv)


def list_entries(args) -> None:
    zoo = model_zoo.load_manifest(args.manifest)
    base = os.environ.get(model_zoo.BASE_URL_ENV) or zoo.base_url
    print(f"{len(zoo)} entries; base URL {base or '(none)'}")
    print(f"{'config':44s} {'method':34s} {'top-1':>6s} {'few':>6s} {'GMACs':>7s}")
    for e in zoo.entries.values():
        m = e.metrics
        print(
            f"{e.name:44s} {e.method:34s} {m.get('top1', float('nan')):6.2f} "
            f"{m.get('few', float('nan')):6.2f} {m.get('gmacs', float('nan')):7.4f}"
        )
        print(f"    {checkpoint_url(e, base)}  sha256 {e.sha256[:12]}")


def main(args) -> int:
    if args.command == "list":
        list_entries(args)
        return 0
    if args.command == "download":
        print(model_zoo.download(args.name, manifest=args.manifest))
        return 0
    import train_net  # the same entry point as training, so eval behaves identically

    entry = model_zoo.load_manifest(args.manifest).get(args.name)
    weights = model_zoo.download(args.name, manifest=args.manifest)  # verified, cached
    opts = model_zoo.inference_overrides(weights, entry.metrics.get("router_threshold"))
    opts += args.opts
    if "OUTPUT_DIR" not in args.opts[::2]:
        opts += [
            "OUTPUT_DIR",
            os.path.join("output", "model_zoo_eval", os.path.splitext(args.name)[0]),
        ]
    return train_net.cli(
        ["--config-file", model_zoo.get_config_file(args.name), "--eval-only", *opts]
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    exit_status = []
    tool_status = run_tool(lambda a: exit_status.append(main(a)), parse_args())
    sys.exit(tool_status or (exit_status[0] if exit_status else 0))
