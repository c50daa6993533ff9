"""tools/aggregate_results.py: mean ± std over seeds, from results.json or tau_norm.json."""
import json
import os
import subprocess
import sys

from tests.conftest import ROOT

TOOL = os.path.join(ROOT, "tools", "aggregate_results.py")


def test_mean_and_std_over_seeds_including_tau_norm_runs(tmp_path):
    runs = []
    for i, top1 in enumerate((70.0, 74.0)):
        run = tmp_path / f"ce{i}"
        run.mkdir()
        (run / "results.json").write_text(json.dumps({"top1": top1, "many": 90.0,
                                                      "medium": 60.0, "few": 30.0 + i}))
        runs.append(str(run))
    tau = tmp_path / "tau"
    tau.mkdir()
    (tau / "tau_norm.json").write_text(json.dumps(
        {"selected_on": "val", "tau": 0.6, "test": {"tau": 0.6, "top1": 73.5, "few": 61.0}}))
    out = subprocess.run([sys.executable, TOOL, "--label", "CE", *runs, "--label=tau", str(tau)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.strip().splitlines()
    assert rows[2] == "| CE | 2 | 72.00 ± 2.83 | 90.00 ± 0.00 | 60.00 ± 0.00 | 30.50 ± 0.71 |"
    assert rows[3] == "| tau | 1 | 73.50 | – | – | 61.00 |"


def test_paired_differences_against_a_reference_row(tmp_path):
    def runs(name, top1s):
        dirs = []
        for s, top1 in enumerate(top1s):
            run = tmp_path / f"{name}_s{s}"
            run.mkdir()
            (run / "results.json").write_text(json.dumps(
                {"top1": top1, "many": 90.0, "medium": 60.0 + s, "few": 30.0}))
            dirs.append(str(run))
        return dirs

    a = runs("a", [80.0, 82.5, 79.0])
    b = runs("b", [78.0, 81.0, 78.5])
    out = subprocess.run([sys.executable, TOOL, "--label", "A", *a, "--label", "B", *b,
                          "--paired", "B"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    paired = out.stdout.strip().splitlines()[-1]
    # d = 2, 1.5, 0.5: mean 1.33, sd 0.764, t(2) = 4.303 -> half-width 1.90.
    assert paired.startswith("| A − B | 3 | +1.33 [-0.56, +3.23] (n.s.) | +0.00 [+0.00, +0.00]")
    bad = subprocess.run([sys.executable, TOOL, "--label", "A", *a, "--paired", "C"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "not one of the labels" in bad.stderr
