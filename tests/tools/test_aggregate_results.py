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
