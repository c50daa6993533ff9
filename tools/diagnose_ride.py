#!/usr/bin/env python
"""Diagnose RIDE runs: experts' own accuracy, per-class recall, diversity against base loss.

    python tools/diagnose_ride.py output/fmnist_lt/ride_6e_bsce_r32_s0 \
        --reference output/fmnist_lt/bsce_r32_s0

For each finished run directory (its ``results.json``, ``metrics.json`` and
``config.yaml``) it prints, as Markdown:

1. test top-1 / many / medium / few, each expert's own top-1 (min, median, max) and the
   gap between the ensemble and its median expert (what ``TEST.EXPERT_GAP_WARNING`` checks);
2. the ratio ``sum_i |diversity_i| / sum_i base_i`` of the logged loss terms, averaged over
   the first, middle and last third of training (RIDE's LDAM-DRW recipe logs about 0.01;
   a collapsing ensemble far more than 1);
3. per-class test recall of every run next to the training count of the class (and of the
   ``--reference`` run, e.g. a single-head Balanced Softmax model of the same seed).

These come from the files the runs wrote. ``--experts`` also runs each run's
``model_final.pth`` over the test split once (as the trainer's evaluation does) and prints,
per expert, its top-1 on the raw logits ``z`` and on ``z + log n`` (the logits a Balanced
Softmax loss fits), and which share of the balanced test images it assigns to the Many /
Medium / Few classes (an unbiased model gives each group its share of the classes).
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from ride_dive.checkpoint import CheckpointError, load_trained_model  # noqa: E402
from ride_dive.config import ConfigError  # noqa: E402
from ride_dive.data import build_datasets, build_test_loader  # noqa: E402
from ride_dive.engine import setup_cfg  # noqa: E402
from ride_dive.utils.env import eval_amp_dtype, resolve_device  # noqa: E402
from ride_dive.utils.modules import inference_context  # noqa: E402
from ride_dive.utils.run_dir import RunDir  # noqa: E402


def _read_json(path: str):
    if not os.path.isfile(path):
        print(f"ERROR: {path} not found: give the directory of a finished run.", file=sys.stderr)
        sys.exit(2)
    with open(path) as f:
        return json.load(f)


def _metrics_lines(run_dir: str):
    path = RunDir(run_dir).metrics
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def diversity_ratios(lines, phases: int = 3):
    """Mean of ``sum |loss_div_e*| / sum (other per-expert terms)`` per third of training.

    Returns a list of ``phases`` floats (None where a phase logged nothing, or the run
    logged no diversity term).
    """
    rows = [r for r in lines if any(k.startswith("loss_div_e") for k in r)]
    if not rows:
        return [None] * phases
    last_epoch = max(int(r.get("epoch", 0)) for r in rows) + 1
    sums = [[] for _ in range(phases)]
    for r in rows:
        div = sum(abs(v) for k, v in r.items() if k.startswith("loss_div_e"))
        base = sum(
            v
            for k, v in r.items()
            if k.startswith("loss_") and "_e" in k and not k.startswith("loss_div_e")
        )
        if base > 0:
            phase = min(int(r.get("epoch", 0)) * phases // last_epoch, phases - 1)
            sums[phase].append(div / base)
    return [statistics.mean(s) if s else None for s in sums]


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_row(name: str, run_dir: str) -> str:
    """One Markdown row: accuracy, experts, ensemble-to-expert gap, diversity ratios."""
    results = _read_json(RunDir(run_dir).results)
    experts = results.get("expert_top1") or []
    median = statistics.median(experts) if experts else None
    gap = results["top1"] - median if median is not None else None
    spread = f"{min(experts):.1f} / {median:.1f} / {max(experts):.1f}" if experts else "–"
    ratios = " / ".join(_fmt(r, 3) for r in diversity_ratios(_metrics_lines(run_dir)))
    cells = [_fmt(results.get(k)) for k in ("top1", "many", "medium", "few")]
    return f"| {name} | {' | '.join(cells)} | {spread} | {_fmt(gap, 1)} | {ratios} |"


# Evaluation of a finished run needs no teacher, and every expert runs on every image.
_EVAL_OPTS = [
    "MODEL.TEACHER.CONFIG_FILE",
    "",
    "MODEL.TEACHER.WEIGHTS",
    "",
    "MODEL.ROUTER.ENABLED",
    "False",
    "MODEL.ROUTER.TRAIN",
    "False",
]


def _run_cfg(run_dir: str):
    config = RunDir(run_dir).config
    if not os.path.isfile(config):
        raise FileNotFoundError(f"{config} not found: give the directory of a finished run.")
    return setup_cfg(config, _EVAL_OPTS)


def class_counts_of(run_dir: str):
    """Training images per class of the run's dataset (rebuilt from its config.yaml)."""
    return [int(n) for n in build_datasets(_run_cfg(run_dir)).class_counts]


def shot_groups(counts, many: int, few: int):
    """Class indices of the Many / Medium / Few groups (docs/METHODS.md section 1)."""
    return {
        "many": [c for c, n in enumerate(counts) if n > many],
        "medium": [c for c, n in enumerate(counts) if few <= n <= many],
        "few": [c for c, n in enumerate(counts) if n < few],
    }


def expert_predictions(run_dir: str):
    """Per expert (and the ensemble): raw top-1, top-1 of ``z + log n`` and the share of
    test predictions per shot group, from one pass of ``model_final.pth`` over the test
    split."""
    cfg = _run_cfg(run_dir)
    splits = build_datasets(cfg)
    counts = [int(n) for n in splits.class_counts]
    device = resolve_device(cfg.MODEL.DEVICE)
    model = load_trained_model(cfg, counts, device, weights=RunDir(run_dir).final_model)
    loader = build_test_loader(cfg, splits.test, device=device)
    chunks, labels = [], []
    dtype = eval_amp_dtype(cfg)
    with (
        inference_context(model),
        torch.autocast(device.type, dtype or torch.bfloat16, enabled=dtype is not None),
    ):
        for images, y in loader:
            chunks.append(model(images.to(device))["expert_logits"].float().cpu())
            labels.append(y.long().cpu())
    experts = torch.cat(chunks, dim=1)  # (E, N, C)
    labels = torch.cat(labels)
    log_n = torch.tensor(counts, dtype=torch.float32).log()
    groups = shot_groups(counts, cfg.TEST.MANY_THRESHOLD, cfg.TEST.FEW_THRESHOLD)
    rows = []
    named = [(f"expert {i}", z) for i, z in enumerate(experts)] + [("ensemble", experts.mean(0))]
    for name, z in named:
        pred = z.argmax(dim=1)
        row = {
            "name": name,
            "top1": 100.0 * float((pred == labels).float().mean()),
            "top1_prior": 100.0 * float(((z + log_n).argmax(dim=1) == labels).float().mean()),
        }
        for group, classes in groups.items():
            if classes:
                row[group] = 100.0 * float(torch.isin(pred, torch.tensor(classes)).float().mean())
        rows.append(row)
    shares = {g: 100.0 * len(c) / len(counts) for g, c in groups.items() if c}
    return rows, shares


def expert_table(name: str, run_dir: str) -> str:
    """Markdown table of :func:`expert_predictions`."""
    rows, shares = expert_predictions(run_dir)
    groups = list(shares)
    lines = [
        f"{name}: predictions per expert on the balanced test split",
        "",
        "| expert | top-1 (z) | top-1 (z + log n) | "
        + " | ".join(f"predicted {g} (share of classes {shares[g]:.0f} %)" for g in groups)
        + " |",
        "|---" * (3 + len(groups)) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['top1']:.2f} | {r['top1_prior']:.2f} | "
            + " | ".join(f"{r[g]:.1f} %" for g in groups)
            + " |"
        )
    return "\n".join(lines)


def per_class_table(named_dirs) -> str:
    """Per-class recall of each run, one row per class, head class first."""
    counts = class_counts_of(named_dirs[0][1])
    recalls = [_read_json(RunDir(d).results)["per_class"] for _, d in named_dirs]
    header = "| class | train images | " + " | ".join(n for n, _ in named_dirs) + " |"
    lines = [header, "|---" * (2 + len(named_dirs)) + "|"]
    for c in sorted(range(len(counts)), key=lambda i: -counts[i]):
        cells = [_fmt(r[c]) if c < len(r) else "–" for r in recalls]
        lines.append(f"| {c} | {counts[c]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished RIDE runs")
    parser.add_argument(
        "--reference",
        default="",
        metavar="RUN_DIR",
        help="a single-head run to compare per-class recall with",
    )
    parser.add_argument(
        "--names", nargs="*", default=None, help="row names (default: the directory names)"
    )
    parser.add_argument(
        "--experts",
        action="store_true",
        help="also run each model_final.pth over the test split: per-expert "
        "top-1 on z and z + log n, predictions per shot group",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    try:
        run(parse_args(argv))
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(2)


def run(args) -> None:
    """Print the tables for the parsed command line."""
    names = args.names or [os.path.basename(os.path.normpath(d)) for d in args.run_dirs]
    if len(names) != len(args.run_dirs):
        print(
            f"ERROR: --names gives {len(names)} names for {len(args.run_dirs)} runs.",
            file=sys.stderr,
        )
        sys.exit(2)
    named = list(zip(names, args.run_dirs))
    if args.reference:
        named.append(
            ("reference: " + os.path.basename(os.path.normpath(args.reference)), args.reference)
        )
    print(
        "| run | top1 | many | medium | few | experts' top1 (min / median / max) "
        "| ensemble − median expert | abs(diversity) / base (1st / 2nd / 3rd third) |"
    )
    print("|---" * 8 + "|")
    for name, run_dir in named:
        print(summary_row(name, run_dir))
    print()
    print(per_class_table(named))
    if args.experts:
        for name, run_dir in zip(names, args.run_dirs):
            print()
            print(expert_table(name, run_dir))


if __name__ == "__main__":
    main()
