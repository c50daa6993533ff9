#!/usr/bin/env python
"""Publish finished runs to the model zoo.

    python tools/publish_model_zoo.py output/fmnist_lt/ce_r32_s0 output/fmnist_lt/bsce_r32_s0
    python tools/publish_model_zoo.py output/my_run --name FashionMNIST-LT/ce_r32.yaml

For every run directory: finds the packaged config it trained (every key equal except
SEED, OUTPUT_DIR and file paths; ``--name`` picks one explicitly, still checked), strips the
checkpoint to the model's weights, checks that it loads strictly into the model built from
that config, writes it to ``--output-dir`` as ``<dataset>/<config>-<sha256[:8]>.pth``, and
records file, sha256, size and the run's measured metrics in the manifest
(``model_zoo/manifest.json``); ``MODEL_ZOO.md`` is then regenerated from the manifest.
Upload the ``--output-dir`` tree to the manifest's base URL (``--base-url`` sets it).
The publishing code is ``benchmarks/publish.py`` (in the repository, not installed).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.publish import publish_run, render_model_zoo_md  # noqa: E402
from ride_dive.checkpoint import atomic_write_text  # noqa: E402
from ride_dive.engine.cli import run_tool  # noqa: E402
from ride_dive.model_zoo import Manifest, load_manifest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run directories")
    p.add_argument("--name", help="packaged config of the run (one RUN_DIR only)")
    p.add_argument(
        "--output-dir",
        default="output/model_zoo",
        help="where the checkpoints to upload are written (default: %(default)s)",
    )
    p.add_argument(
        "--manifest",
        default=os.path.join(REPO, "model_zoo", "manifest.json"),
        help="manifest to update (created if missing; default: the repository's)",
    )
    p.add_argument(
        "--model-zoo-md",
        default=os.path.join(REPO, "MODEL_ZOO.md"),
        help="table generated from the manifest (default: %(default)s)",
    )
    p.add_argument("--base-url", help="set the manifest's base URL")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="measure the metrics by evaluating the published file with this "
        "version of the code (what `tools/model_zoo.py eval` reproduces) "
        "instead of copying the run's results.json",
    )
    args = p.parse_args(argv)
    if args.name and len(args.runs) > 1:
        p.error("--name applies to a single RUN_DIR")
    return args


def main(args) -> None:
    manifest = load_manifest(args.manifest) if os.path.isfile(args.manifest) else Manifest()
    if args.base_url is not None:
        manifest.base_url = args.base_url
    for run in args.runs:
        entry = publish_run(run, args.output_dir, manifest, name=args.name, evaluate=args.evaluate)
        print(
            f"{run} -> {entry.name}: {os.path.join(args.output_dir, entry.file)} "
            f"(sha256 {entry.sha256[:12]}, {entry.size} bytes, top-1 "
            f"{entry.metrics.get('top1', float('nan')):.2f})"
        )
    atomic_write_text(args.manifest, manifest.dumps())
    flags = "--evaluate " if args.evaluate else ""
    command = f"python tools/publish_model_zoo.py {flags}" + " ".join(
        os.path.relpath(r) if os.path.isabs(r) else r for r in args.runs
    )
    atomic_write_text(args.model_zoo_md, render_model_zoo_md(manifest, command))
    print(f"Updated {args.manifest} ({len(manifest)} entries) and {args.model_zoo_md}")


if __name__ == "__main__":
    sys.exit(run_tool(main, parse_args()))
