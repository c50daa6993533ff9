"""tools/diagnose_ride.py on a real tiny RIDE run, and the trainer's expert warning."""

import json
import os
import subprocess
import sys

import pytest

from ride_dive.engine import DefaultTrainer, setup_cfg
from ride_dive.engine.defaults import save_config
from ride_dive.utils.logger import setup_logger
from tests.conftest import RIDE_OVERRIDES, ROOT, tiny_overrides

TOOL = os.path.join(ROOT, "tools", "diagnose_ride.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import diagnose_ride  # noqa: E402

setup_logger("", rank=1)  # quiet


@pytest.fixture(scope="module")
def ride_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ride")
    cfg = setup_cfg(
        "",
        tiny_overrides(
            out,
            **RIDE_OVERRIDES,
            **{"MODEL.RIDE.NUM_EXPERTS": 3, "SOLVER.MAX_EPOCHS": 2, "LOG_PERIOD": 1},
        ),
    )
    save_config(cfg)  # as tools/train_net.py does
    results = DefaultTrainer(cfg).train()
    return str(out), results


def test_diversity_ratio_by_thirds_of_training():
    lines = [
        {
            "epoch": e,
            "loss_base_e0": 1.0,
            "loss_base_e1": 3.0,
            "loss_div_e0": -0.1 * (e + 1),
            "loss_div_e1": -0.1 * (e + 1),
        }
        for e in range(6)
    ]
    # Epochs 0-1, 2-3, 4-5: |div| / base = 0.2 (e + 1) / 4, averaged per third.
    assert diagnose_ride.diversity_ratios(lines) == pytest.approx([0.075, 0.175, 0.275])
    assert diagnose_ride.diversity_ratios([{"epoch": 0, "loss_base_e0": 1.0}]) == [None] * 3


def test_tool_reports_the_run_and_the_reference(ride_run):
    run_dir, results = ride_run
    out = subprocess.run(
        [sys.executable, TOOL, run_dir, "--names", "tiny", "--reference", run_dir],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    row = next(line for line in lines if line.startswith("| tiny |"))
    experts = results["expert_top1"]
    assert f"{min(experts):.1f} / " in row and f" / {max(experts):.1f} |" in row
    assert f"| {results['top1']:.2f} |" in row
    # The per-class table: head class first, with its training count and recall.
    with open(os.path.join(run_dir, "results.json")) as f:
        per_class = json.load(f)["per_class"]
    assert f"| 0 | 40 | {per_class[0]:.2f} | {per_class[0]:.2f} |" in lines


def test_missing_run_is_a_clear_error(tmp_path, ride_run):
    out = subprocess.run([sys.executable, TOOL, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "results.json not found" in out.stderr
    assert "Traceback" not in out.stderr
    # --experts on a run whose weights are gone: one line, exit 2.
    run_dir, _ = ride_run
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("results.json", "metrics.json", "config.yaml"):
        (copy / name).write_bytes(open(os.path.join(run_dir, name), "rb").read())
    out = subprocess.run(
        [sys.executable, TOOL, str(copy), "--experts"], capture_output=True, text=True
    )
    assert out.returncode == 2, out.stderr
    assert "model_final.pth" in out.stderr and "Traceback" not in out.stderr


def test_trainer_stores_and_logs_the_expert_warning(ride_run, monkeypatch):
    run_dir, _ = ride_run
    cfg = setup_cfg(os.path.join(run_dir, "config.yaml"), ["OUTPUT_DIR", run_dir])
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=True)
    seen = {}

    def fake(results, max_gap):
        seen["args"] = (sorted(results), max_gap)
        return "experts collapsed"

    monkeypatch.setattr("ride_dive.evaluation.default_evaluators.expert_competence_warning", fake)
    results = trainer.test()
    assert results["warnings"] == ["experts collapsed"]
    assert "expert_top1" in seen["args"][0] and seen["args"][1] == 15.0


def test_expert_predictions_agree_with_the_runs_own_evaluation(ride_run):
    run_dir, results = ride_run
    rows, shares = diagnose_ride.expert_predictions(run_dir)
    assert [r["name"] for r in rows] == ["expert 0", "expert 1", "expert 2", "ensemble"]
    for r, want in zip(rows, results["expert_top1"]):
        assert r["top1"] == pytest.approx(want, abs=1e-6)
    assert rows[-1]["top1"] == pytest.approx(results["top1"], abs=1e-6)
    # Every test image is predicted into exactly one shot group.
    for r in rows:
        assert sum(r[g] for g in shares) == pytest.approx(100.0)
    assert sum(shares.values()) == pytest.approx(100.0)
    out = subprocess.run(
        [sys.executable, TOOL, run_dir, "--experts"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert f"| ensemble | {results['top1']:.2f} |" in out.stdout
