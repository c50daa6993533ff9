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
        (run / "results.json").write_text(
            json.dumps({"top1": top1, "many": 90.0, "medium": 60.0, "few": 30.0 + i})
        )
        runs.append(str(run))
    tau = tmp_path / "tau"
    tau.mkdir()
    (tau / "tau_norm.json").write_text(
        json.dumps(
            {"selected_on": "val", "tau": 0.6, "test": {"tau": 0.6, "top1": 73.5, "few": 61.0}}
        )
    )
    out = subprocess.run(
        [sys.executable, TOOL, "--label", "CE", *runs, "--label=tau", str(tau)],
        capture_output=True,
        text=True,
    )
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
            (run / "results.json").write_text(
                json.dumps({"top1": top1, "many": 90.0, "medium": 60.0 + s, "few": 30.0})
            )
            dirs.append(str(run))
        return dirs

    a = runs("a", [80.0, 82.5, 79.0])
    b = runs("b", [78.0, 81.0, 78.5])
    out = subprocess.run(
        [sys.executable, TOOL, "--label", "A", *a, "--label", "B", *b, "--paired", "B"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    paired = out.stdout.strip().splitlines()[-1]
    # d = 2, 1.5, 0.5: mean 1.33, sd 0.764, t(2) = 4.303 -> half-width 1.90.
    assert paired.startswith("| A − B | 3 | +1.33 [-0.56, +3.23] (n.s.) | +0.00 [+0.00, +0.00]")
    bad = subprocess.run(
        [sys.executable, TOOL, "--label", "A", *a, "--paired", "C"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "not one of the labels" in bad.stderr


def test_a_seed_that_did_not_report_a_number_is_left_out_of_its_cell(tmp_path):
    runs = []
    for i, few in enumerate((30.0, None, 34.0)):
        run = tmp_path / f"s{i}"
        run.mkdir()
        (run / "results.json").write_text(json.dumps({"top1": 70.0 + i, "few": few}))
        runs.append(str(run))
    out = subprocess.run(
        [sys.executable, TOOL, "--label", "CE", *runs], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    # top-1 over three seeds; few over the two that gave it (sd of 30, 34 is 2.83).
    assert out.stdout.splitlines()[2] == "| CE | 3 | 71.00 ± 1.00 | – | – | 32.00 ± 2.83 |"


def test_a_tau_norm_stage_contributes_its_chosen_tau_not_the_raw_model(tmp_path):
    run = tmp_path / "tau_norm"
    run.mkdir()
    (run / "results.json").write_text(
        json.dumps(
            {
                "top1": 60.0,
                "many": 90.0,
                "medium": 50.0,
                "few": 10.0,
                "tau_norm": {
                    "selected_on": "val",
                    "tau": 0.8,
                    "test": {"tau": 0.8, "top1": 66.0, "many": 85.0, "medium": 60.0, "few": 40.0},
                },
            }
        )
    )
    out = subprocess.run(
        [sys.executable, TOOL, "--label", "tau", str(run)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[2] == "| tau | 1 | 66.00 | 85.00 | 60.00 | 40.00 |"


def test_a_posthoc_run_contributes_its_chosen_tau(tmp_path):
    run = tmp_path / "posthoc"
    run.mkdir()
    chosen = {"tau": 0.8, "top1": 77.0, "many": 80.0, "medium": 70.0, "few": 65.0}
    (run / "results.json").write_text(
        json.dumps({"top1": 70.0, "few": 30.0, "posthoc_la": {"test": chosen, "tau": 0.8}})
    )
    out = subprocess.run(
        [sys.executable, TOOL, "--label", "post-hoc", str(run)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[2] == "| post-hoc | 1 | 77.00 | 80.00 | 70.00 | 65.00 |"


def test_comma_separated_runs_are_chosen_between_on_validation(tmp_path):
    def run(name, val, test):
        d = tmp_path / name
        d.mkdir()
        (d / "results.json").write_text(json.dumps({"top1": test, "val": {"top1": val}}))
        return str(d)

    seed0 = ",".join([run("a0", 70.0, 90.0), run("b0", 75.0, 60.0)])  # best val, worse test
    seed1 = ",".join([run("a1", 80.0, 50.0), run("b1", 79.0, 99.0)])
    out = subprocess.run(
        [sys.executable, TOOL, "--label", "chosen", seed0, seed1], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[2].startswith("| chosen | 2 | 55.00 ± 7.07 |")
    assert "chose " + str(tmp_path / "b0") in out.stderr
    no_val = tmp_path / "nv"
    no_val.mkdir()
    (no_val / "results.json").write_text(json.dumps({"top1": 1.0}))
    bad = subprocess.run(
        [sys.executable, TOOL, "--label", "x", f"{no_val},{seed1.split(',')[0]}"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "no validation top-1" in bad.stderr
