#!/usr/bin/env python
"""Choose among router runs (e.g. different MODEL.ROUTER.POS_WEIGHT) on validation numbers.

    python tools/select_router.py output/fmnist_lt/ride_4e_r32_s0_router_pw{10,100,1000}

Each run must have been evaluated with ``TEST.ROUTER_SELECT_MAX_TOP1_DROP`` set and a
validation split, so that its results.json holds the threshold chosen on validation. The
run whose chosen threshold runs the fewest experts per image on validation wins (ties: the
higher validation top-1); only then are its test numbers printed. Test numbers never take
part in the choice. The last line is the choice as JSON, for scripts.
"""

import argparse
import json
import os
import sys
from typing import Dict, List, Tuple


def load_selection(run_dir: str) -> Tuple[Dict, Dict]:
    """``(results, results["router"]["selection"])`` of a run, or exit with the reason."""
    path = os.path.join(run_dir, "results.json")
    if not os.path.isfile(path):
        sys.exit(f"ERROR: {path} not found: did the run finish?")
    with open(path) as f:
        results = json.load(f)
    selection = results.get("router", {}).get("selection")
    if selection is None:
        sys.exit(
            f"ERROR: {path} has no validation choice of the router threshold. Evaluate the "
            "run with a validation split and TEST.ROUTER_SELECT_MAX_TOP1_DROP >= 0, e.g.\n"
            f"  python tools/train_net.py --config-file {run_dir}/config.yaml --eval-only "
            f"MODEL.WEIGHTS {run_dir}/model_final.pth TEST.ROUTER_SELECT_MAX_TOP1_DROP 0.5"
        )
    return results, selection


def choose(selections: List[Dict]) -> int:
    """Index of the selection with the fewest validation experts per image (ties: the
    higher validation top-1, then the first given)."""
    return min(
        range(len(selections)),
        key=lambda i: (selections[i]["experts_used_mean"], -selections[i]["top1"], i),
    )


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="router run directories")
    args = parser.parse_args(argv)
    loaded = [load_selection(d) for d in args.runs]
    selections = [s for _, s in loaded]
    best = choose(selections)

    print("validation (chooses)")
    print(f"{'run':<50} {'pos_weight':>10} {'thresh':>7} {'top1':>6} {'full':>6} {'experts':>7}")
    for i, (run, (results, sel)) in enumerate(zip(args.runs, loaded)):
        pos_weight = _pos_weight(run)
        mark = "*" if i == best else " "
        print(
            f"{run:<50} {str(pos_weight):>10} {sel['threshold']:>7g} {sel['top1']:>6.2f} "
            f"{sel['full_ensemble_top1']:>6.2f} {sel['experts_used_mean']:>6.2f}{mark}"
        )

    results, sel = loaded[best]
    router = results["router"]
    summary = {
        "run": args.runs[best],
        "pos_weight": _pos_weight(args.runs[best]),
        "threshold": sel["threshold"],
        "test_top1": results["top1"],
        "test_full_ensemble_top1": router["full_ensemble_top1"],
        "test_top1_drop": router["full_ensemble_top1"] - results["top1"],
        "test_experts_used_mean": results["experts_used_mean"],
        "test_gmacs": router["gmacs"],
        "full_ensemble_gmacs": router["full_ensemble_gmacs"],
    }
    for key in ("many", "medium", "few"):
        if key in results:
            summary[f"test_{key}"] = results[key]
    print(
        f"\ntest (chosen run {summary['run']}, threshold {sel['threshold']:g}): top-1 "
        f"{summary['test_top1']:.2f} vs {summary['test_full_ensemble_top1']:.2f} full ensemble "
        f"(drop {summary['test_top1_drop']:.2f}), {summary['test_experts_used_mean']:.2f} "
        f"experts/image, {summary['test_gmacs']:.4f} vs {summary['full_ensemble_gmacs']:.4f} "
        "GMACs/image"
    )
    print(json.dumps(summary))
    return summary


def _pos_weight(run_dir: str):
    """MODEL.ROUTER.POS_WEIGHT from the run's saved config.yaml (None if unreadable)."""
    path = os.path.join(run_dir, "config.yaml")
    try:
        import yaml

        with open(path) as f:
            return yaml.safe_load(f)["MODEL"]["ROUTER"]["POS_WEIGHT"]
    except (OSError, KeyError, TypeError, ValueError):
        return None


if __name__ == "__main__":
    main()
