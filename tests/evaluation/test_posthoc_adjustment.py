"""Post-hoc logit adjustment: the formula, and tau chosen on validation, never on test."""

import json
import math

import pytest
import torch

from ride_dive.engine import DefaultTrainer
from ride_dive.evaluation import adjust_logits, posthoc_sweep

COUNTS = [90, 9, 1]


def test_adjustment_is_z_minus_tau_log_prior():
    z = torch.tensor([[2.0, 1.0, 0.0], [0.5, -0.5, 3.0]])
    got = adjust_logits(z, COUNTS, 0.5)
    for row_z, row in zip(z.tolist(), got.tolist()):
        want = [v - 0.5 * math.log(n / 100) for v, n in zip(row_z, COUNTS)]
        assert row == pytest.approx(want, rel=1e-6)
    assert torch.equal(adjust_logits(z, COUNTS, 0.0), z)


def test_sweep_rows_are_the_metrics_of_the_adjusted_logits():
    # Head class 0 wins every raw argmax; only adjusting by tau >= ~1 lets the tail classes
    # win the images that are theirs.
    z = torch.tensor([[3.0, 1.5, 0.0], [3.0, 1.5, 0.0], [3.0, 0.0, 0.5], [3.0, 0.0, 0.0]])
    labels = torch.tensor([1, 1, 2, 0])
    rows = posthoc_sweep(z, labels, COUNTS, [0.0, 1.0])
    assert [r["tau"] for r in rows] == [0.0, 1.0]
    assert rows[0]["top1"] == pytest.approx(25.0)  # only the class-0 image
    # tau = 1: +4.61 on class 2, +2.41 on class 1, +0.11 on class 0 -> predictions 2, 2, 2, 2
    adjusted = adjust_logits(z, COUNTS, 1.0).argmax(1)
    assert rows[1]["top1"] == pytest.approx(100.0 * (adjusted == labels).float().mean().item())


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory):
    from ride_dive.engine import setup_cfg
    from tests.conftest import tiny_overrides

    out = tmp_path_factory.mktemp("ce")
    DefaultTrainer(setup_cfg("", tiny_overrides(out, **{"SOLVER.MAX_EPOCHS": 2}))).train()
    return str(out / "model_final.pth")


@pytest.mark.parametrize("val_source", ["test", "none"])
def test_evaluator_chooses_tau_on_validation_and_reports_test(
    ce_run, tiny_cfg, tmp_path, val_source
):
    cfg = tiny_cfg(
        **{
            "MODEL.WEIGHTS": ce_run,
            "TEST.POSTHOC_LA_SWEEP": True,
            "TEST.POSTHOC_LA_TAUS": "[0.0, 0.5, 1.0, 2.0]",
            "DATASETS.VAL_SOURCE": val_source,
            "DATASETS.VAL_PER_CLASS": 2,
        },
        output_dir=tmp_path,
    )
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.test()
    report = results["posthoc_la"]
    assert report["selected_on"] == ("val" if val_source == "test" else "test")
    assert [r["tau"] for r in report["sweep"]] == [0.0, 0.5, 1.0, 2.0]
    best = max(report["sweep"], key=lambda r: (r["top1"], -r["tau"]))
    assert report["tau"] == best["tau"] == report["test"]["tau"]
    assert report["test_tau0"]["tau"] == 0.0
    # tau = 0 on test is the run's own, unadjusted test accuracy.
    assert report["test_tau0"]["top1"] == pytest.approx(results["top1"], abs=1e-6)
    if val_source == "none":  # chosen on test: the chosen row is the best test row
        assert report["test"]["top1"] == pytest.approx(best["top1"])
    on_disk = json.load(open(tmp_path / "posthoc_la.json"))
    assert on_disk["tau"] == report["tau"] and on_disk["selected_on"] == report["selected_on"]
