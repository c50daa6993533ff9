"""tools/select_router.py: the choice among router runs uses validation numbers only."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "select_router.py")


def _run_dir(tmp_path, name, pos_weight, val_experts, val_top1, test_top1):
    run = tmp_path / name
    run.mkdir()
    (run / "config.yaml").write_text(f"MODEL:\n  ROUTER:\n    POS_WEIGHT: {pos_weight}\n")
    results = {
        "top1": test_top1,
        "many": 90.0,
        "medium": 70.0,
        "few": 60.0,
        "experts_used_mean": val_experts + 0.1,
        "router": {
            "full_ensemble_top1": 80.0,
            "gmacs": 0.05,
            "full_ensemble_gmacs": 0.1,
            "selection": {
                "split": "val",
                "threshold": 0.5,
                "top1": val_top1,
                "full_ensemble_top1": 81.0,
                "experts_used_mean": val_experts,
            },
        },
    }
    (run / "results.json").write_text(json.dumps(results))
    return str(run)


def _select(*runs):
    out = subprocess.run([sys.executable, TOOL, *runs], capture_output=True, text=True)
    return out


def test_fewest_validation_experts_win_whatever_the_test_says(tmp_path):
    cheap = _run_dir(tmp_path, "pw10", 10.0, val_experts=1.6, val_top1=80.6, test_top1=70.0)
    tie = _run_dir(tmp_path, "pw30", 30.0, val_experts=1.6, val_top1=80.5, test_top1=79.9)
    costly = _run_dir(tmp_path, "pw100", 100.0, val_experts=2.4, val_top1=80.9, test_top1=85.0)
    out = _select(costly, tie, cheap)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    # Same validation cost: the higher validation top-1 (pw10), despite its worse test top-1.
    assert summary["run"] == cheap and summary["pos_weight"] == 10.0
    assert summary["test_top1"] == 70.0
    assert summary["test_top1_drop"] == pytest.approx(10.0)
    assert summary["test_experts_used_mean"] == pytest.approx(1.7)


def test_run_without_validation_choice_is_refused_with_the_fix(tmp_path):
    run = tmp_path / "plain"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"top1": 1.0, "router": {}}))
    out = _select(str(run))
    assert out.returncode != 0
    assert "TEST.ROUTER_SELECT_MAX_TOP1_DROP" in out.stderr and "Traceback" not in out.stderr
