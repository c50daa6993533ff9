#!/usr/bin/env python
"""Mean ± std over seeds of the results.json files of several runs, as a Markdown table.

    python tools/aggregate_results.py --label CE output/fmnist_lt/ce_r32_s{0,1,2} \
                                      --label BSCE output/fmnist_lt/bsce_r32_s{0,1,2}

Each ``--label`` starts a new row; the run directories after it are its seeds. A run that
swept tau-norm (a pipeline's tau-norm stage, or a directory written by ``tools/tau_norm.py``)
contributes the test numbers of its chosen tau, and a run that swept post-hoc logit
adjustment (``TEST.POSTHOC_LA_SWEEP``) those of its chosen post-hoc tau.

A seed given as comma-separated run directories (``la_t0.5_s0,bsce_s0,la_t1.5_s0``) is a
choice made on validation: the run with the highest validation top-1 (``val.top1`` of its
results.json) counts for that seed, and the choice is printed to stderr. This is how a
hyper-parameter (e.g. the logit-adjusted loss's tau) is chosen per seed without looking at
the test split.

``--paired NAME`` adds a second table: for every other row, the paired difference
row − NAME over the seeds both give (the i-th directory of each row is the same seed), its
mean with a 95 % t-interval (docs/METHODS.md section 10), and "(n.s.)" where the interval holds 0.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ride_dive.evaluation.statistics import (  # noqa: E402
    format_mean_std,
    format_paired,
    paired_difference,
)
from ride_dive.utils.run_dir import RunDir  # noqa: E402

METRICS = ("top1", "many", "medium", "few")


def load(run_dir: str) -> dict:
    """A run's test metrics: its ``results.json`` (the chosen tau's when the run swept
    tau-norm, ``TEST.TAU_NORM_SWEEP``, or post-hoc logit adjustment,
    ``TEST.POSTHOC_LA_SWEEP``), else the chosen tau's of ``tau_norm.json``."""
    run = RunDir(run_dir)
    if os.path.isfile(run.results):
        with open(run.results) as f:
            results = json.load(f)
        for sweep in ("tau_norm", "posthoc_la"):
            if sweep in results:
                return results[sweep]["test"]
        return results
    if os.path.isfile(run.tau_norm):
        with open(run.tau_norm) as f:
            return json.load(f)["test"]
    sys.exit(f"ERROR: {run.results} not found: did the run finish?")


def load_seed(arg: str) -> dict:
    """One seed's metrics: ``load(arg)``, or for ``a,b,c`` those of the run with the best
    validation top-1 (ties: the first)."""
    if "," not in arg:
        return load(arg)
    best, best_val = None, None
    for run_dir in arg.split(","):
        run = RunDir(run_dir)
        if not os.path.isfile(run.results):
            sys.exit(f"ERROR: {run.results} not found: did the run finish?")
        with open(run.results) as f:
            val = (json.load(f).get("val") or {}).get("top1")
        if val is None:
            sys.exit(
                f"ERROR: {run.results} has no validation top-1 ('val'), so the runs {arg} cannot "
                "be chosen between without the test split; train with a validation split "
                "(DATASETS.VAL_SOURCE, DATASETS.VAL_PER_CLASS)."
            )
        if best_val is None or val > best_val:
            best, best_val = run_dir, val
    print(f"chose {best} (validation top-1 {best_val:.2f}) from {arg}", file=sys.stderr)
    return load(best)


def parse(argv):
    rows, current = [], None
    for arg in argv:
        if arg.startswith("--label="):
            current = (arg.split("=", 1)[1], [])
            rows.append(current)
        elif current is None:
            sys.exit("ERROR: give --label=NAME before the run directories of that row")
        else:
            current[1].append(arg)
    return rows


def paired_table(rows, results, reference: str) -> str:
    """Markdown rows of ``row - reference`` paired over seeds, one per other row."""
    names = [label for label, _ in rows]
    if reference not in names:
        sys.exit(f"ERROR: --paired {reference!r} is not one of the labels: {', '.join(names)}")
    ref = results[names.index(reference)]
    lines = [
        f"| paired difference (95 % interval) | seeds | {' | '.join(METRICS)} |",
        "|---" * (len(METRICS) + 2) + "|",
    ]
    for (label, _), runs in zip(rows, results):
        if label == reference:
            continue
        n = min(len(runs), len(ref))
        if n < 2:
            sys.exit(
                f"ERROR: a paired interval needs >= 2 seeds in both {label!r} and {reference!r}"
            )
        cells = []
        for m in METRICS:
            pairs = [
                (a[m], b[m])
                for a, b in zip(runs[:n], ref[:n])
                if a.get(m) is not None and b.get(m) is not None
            ]
            cells.append(format_paired(paired_difference(*zip(*pairs))) if len(pairs) >= 2 else "–")
        lines.append(f"| {label} − {reference} | {n} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    reference = None
    if "--paired" in argv:
        i = argv.index("--paired")
        if i + 1 >= len(argv):
            sys.exit("ERROR: --paired needs the label of the reference row")
        reference = argv[i + 1]
        del argv[i : i + 2]
    # Accept both "--label NAME" and "--label=NAME".
    joined = []
    for i, arg in enumerate(argv):
        if arg == "--label":
            continue
        joined.append(f"--label={arg}" if i > 0 and argv[i - 1] == "--label" else arg)
    if not joined or joined[0] in ("-h", "--help"):
        print(__doc__)
        return
    rows = parse(joined)
    print(f"| method | seeds | {' | '.join(METRICS)} |")
    print("|---" * (len(METRICS) + 2) + "|")
    all_results = []
    for label, dirs in rows:
        results = [load_seed(d) for d in dirs]
        all_results.append(results)
        cells = [format_mean_std([r.get(m) for r in results]) for m in METRICS]
        print(f"| {label} | {len(results)} | {' | '.join(cells)} |")
    if reference is not None:
        print()
        print(paired_table(rows, all_results, reference))


if __name__ == "__main__":
    main()
