#!/usr/bin/env python
"""Mean ± std over seeds of the results.json files of several runs, as a Markdown table.

    python tools/aggregate_results.py --label CE output/fmnist_lt/ce_r32_s{0,1,2} \
                                      --label BSCE output/fmnist_lt/bsce_r32_s{0,1,2}

Each ``--label`` starts a new row; the run directories after it are its seeds. A directory
written by ``tools/tau_norm.py`` contributes the test numbers of its chosen tau.
"""
import json
import os
import statistics
import sys

METRICS = ("top1", "many", "medium", "few")


def load(run_dir: str) -> dict:
    """A run's test metrics: ``results.json``, or the chosen tau's of ``tau_norm.json``."""
    path = os.path.join(run_dir, "results.json")
    tau_path = os.path.join(run_dir, "tau_norm.json")
    if not os.path.isfile(path) and os.path.isfile(tau_path):
        with open(tau_path) as f:
            return json.load(f)["test"]
    if not os.path.isfile(path):
        sys.exit(f"ERROR: {path} not found: did the run finish?")
    with open(path) as f:
        return json.load(f)


def cell(values) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


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


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
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
    for label, dirs in rows:
        results = [load(d) for d in dirs]
        cells = [cell([r[m] for r in results if m in r]) for m in METRICS]
        print(f"| {label} | {len(results)} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
