"""RIDE through the trainer: stage 1, the router stage on its weights, checkpoint rules."""

import json
import os

import pytest
import torch

from ride_dive.checkpoint import Checkpointer, CheckpointMismatchError
from ride_dive.engine import DefaultTrainer
from ride_dive.modeling import build_model
from ride_dive.utils.logger import setup_logger
from tests.conftest import RIDE_OVERRIDES

setup_logger("", rank=1)  # quiet

RIDE = {
    **RIDE_OVERRIDES,
    "MODEL.RIDE.NUM_EXPERTS": 3,
    "MODEL.LOSS.RIDE.BASE_LOSS": "LDAMLoss",
    "MODEL.LOSS.DRW_EPOCH": 1,
    "SOLVER.MAX_EPOCHS": 2,
}
ROUTER_STAGE = {
    "MODEL.ROUTER.ENABLED": True,
    "MODEL.ROUTER.TRAIN": True,
    "DATALOADER.SAMPLER": "ClassAwareSampler",
    "SOLVER.BASE_LR": 0.01,
    "SOLVER.NESTEROV": True,
    "TEST.ROUTER_THRESHOLDS": [0.0, 0.5, 1.0],
}


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """A 2-epoch RIDE run; returns (cfg overrides, results, path of model_final.pth)."""
    from ride_dive.engine import setup_cfg
    from tests.conftest import tiny_overrides

    out = tmp_path_factory.mktemp("stage1")
    cfg = setup_cfg("", tiny_overrides(out, **RIDE))
    results = DefaultTrainer(cfg).train()
    return results, os.path.join(cfg.OUTPUT_DIR, "model_final.pth")


def test_stage1_reports_each_expert(stage1):
    results, _ = stage1
    assert len(results["expert_top1"]) == 3
    assert results["experts_used"] == {"1": 0.0, "2": 0.0, "3": 100.0}
    assert "router" not in results


def test_router_stage_changes_nothing_but_the_router(stage1, tiny_cfg, tmp_path):
    stage1_results, weights = stage1
    cfg = tiny_cfg(**RIDE, **ROUTER_STAGE, **{"MODEL.WEIGHTS": weights})
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    router_init = {k: v.clone() for k, v in trainer.model.router.state_dict().items()}
    results = trainer.train()

    saved = torch.load(weights, weights_only=True)["model"]
    state = trainer.model.state_dict()
    assert set(state) - set(saved) == {f"router.{k}" for k in router_init}
    for key, value in saved.items():  # weights, BN running statistics and batch counters
        assert torch.equal(state[key], value), key
    assert any(
        not torch.equal(v, trainer.model.router.state_dict()[k]) for k, v in router_init.items()
    )

    report = results["router"]
    by_threshold = {row["threshold"]: row for row in report["sweep"]}
    # Threshold 0 is the full ensemble, threshold 1 expert 1 alone: stage 1's own numbers.
    assert by_threshold[0.0]["top1"] == pytest.approx(stage1_results["top1"])
    assert by_threshold[1.0]["top1"] == pytest.approx(stage1_results["expert_top1"][0])
    macs = report["gmacs_per_expert_count"]
    assert by_threshold[0.0]["gmacs"] == pytest.approx(macs[-1])
    assert by_threshold[1.0]["gmacs"] == pytest.approx(macs[0])
    assert macs[0] < report["full_ensemble_gmacs"] < macs[-1]  # routers cost a little
    # The early-exit evaluation and the sweep agree at the configured threshold.
    assert results["experts_used"] == pytest.approx(by_threshold[0.5]["experts_used"])
    shares = [report["experts_used"][str(k + 1)] / 100 for k in range(3)]
    assert report["gmacs"] == pytest.approx(sum(s * m for s, m in zip(shares, macs)))
    saved_results = json.load(open(os.path.join(cfg.OUTPUT_DIR, "results.json")))
    assert len(saved_results["router"]["sweep"]) == 3
    assert os.path.getsize(os.path.join(cfg.OUTPUT_DIR, "router_tradeoff.png")) > 1000


def _model(tiny_cfg, **extra):
    return build_model(tiny_cfg(**{**RIDE, **extra}), [40, 30, 20, 15, 10, 8, 6, 5, 4, 4])


def test_stage1_weights_load_only_where_the_router_is_new(stage1, tiny_cfg, tmp_path):
    _, weights = stage1
    router_stage = _model(tiny_cfg, **{"MODEL.ROUTER.ENABLED": True, "MODEL.ROUTER.TRAIN": True})
    Checkpointer(router_stage, str(tmp_path)).resume_or_load(weights, resume=False)
    # Evaluating a router model needs trained routers: their absence is an error there.
    evaluation = _model(tiny_cfg, **{"MODEL.ROUTER.ENABLED": True})
    with pytest.raises(CheckpointMismatchError, match=r"missing keys.*router\.out\.weight"):
        Checkpointer(evaluation, str(tmp_path)).resume_or_load(weights, resume=False)
    # A different architecture still fails, naming the keys, in the router stage too.
    wrong = _model(
        tiny_cfg,
        **{"MODEL.RIDE.NUM_EXPERTS": 4, "MODEL.ROUTER.ENABLED": True, "MODEL.ROUTER.TRAIN": True},
    )
    with pytest.raises(CheckpointMismatchError, match=r"layer2s\.3\."):
        Checkpointer(wrong, str(tmp_path)).resume_or_load(weights, resume=False)


def test_router_checkpoint_evaluates_as_full_ensemble_without_router(tiny_cfg, tmp_path):
    with_router = _model(tiny_cfg, **{"MODEL.ROUTER.ENABLED": True})
    path = Checkpointer(with_router, str(tmp_path)).save("with_router")
    plain = _model(tiny_cfg)
    Checkpointer(plain, str(tmp_path)).resume_or_load(path, resume=False)
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        out = plain.eval()(x)
        experts = with_router.eval().forward_all(x)["expert_logits"]
    torch.testing.assert_close(out["logits"], experts.mean(dim=0))
    assert out["experts_used"].tolist() == [3] * 5
    # The declared prefixes excuse router keys only: other extra keys still fail.
    state = dict(with_router.state_dict(), **{"extra.weight": torch.zeros(1)})
    torch.save({"model": state}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointMismatchError, match="extra.weight"):
        Checkpointer(plain, str(tmp_path)).resume_or_load(str(tmp_path / "extra.pth"), resume=False)


def test_router_threshold_is_chosen_on_validation_and_used_on_test(stage1, tiny_cfg):
    _, weights = stage1
    cfg = tiny_cfg(
        **{
            **RIDE,
            **ROUTER_STAGE,
            "MODEL.WEIGHTS": weights,
            "SOLVER.MAX_EPOCHS": 1,
            "SOLVER.WARMUP_EPOCHS": 0,
            "DATASETS.VAL_SOURCE": "test",
            "DATASETS.VAL_PER_CLASS": 2,
            "TEST.ROUTER_SELECT_MAX_TOP1_DROP": 100.0,  # any loss allowed: the cheapest wins
            "TEST.ROUTER_THRESHOLDS": [0.5, 1.0],
            "MODEL.ROUTER.THRESHOLD": 0.0,  # configured: the full ensemble
        }
    )
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    selection = results["router"]["selection"]
    # Threshold 1 runs expert 1 alone; 0.5 may tie with it (then the more accurate, then
    # the lower threshold wins).
    assert selection["split"] == "val" and selection["experts_used_mean"] == 1.0
    assert selection["threshold"] in (0.5, 1.0)
    # The validation sweep always holds the full ensemble (threshold 0) to compare with.
    assert [row["threshold"] for row in selection["sweep"]] == [0.0, 0.5, 1.0]
    assert selection["full_ensemble_top1"] == pytest.approx(selection["sweep"][0]["top1"])
    # The test numbers are those of the chosen threshold, not of the configured 0.
    assert results["router"]["threshold"] == selection["threshold"]
    assert results["experts_used_mean"] == 1.0
    assert results["router"]["experts_used_mean"] == 1.0


def test_router_threshold_is_never_chosen_on_test(stage1, tiny_cfg, caplog):
    _, weights = stage1
    cfg = tiny_cfg(
        **{
            **RIDE,
            **ROUTER_STAGE,
            "MODEL.WEIGHTS": weights,
            "SOLVER.MAX_EPOCHS": 1,
            "SOLVER.WARMUP_EPOCHS": 0,
            "TEST.ROUTER_SELECT_MAX_TOP1_DROP": 100.0,
        }
    )
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    with caplog.at_level("WARNING", logger="ride_dive"):
        results = trainer.train()
    assert "selection" not in results["router"]
    assert results["router"]["threshold"] == 0.5  # MODEL.ROUTER.THRESHOLD, as configured
    assert "NOT selected" in caplog.text


def test_router_timing_tool_runs_on_a_router_run(stage1, tiny_cfg, capsys):
    """tools/benchmark.py router: both inference modes over the run's test split, and the
    experts/image it reports is the early-exit count of the run's own evaluation."""

    from benchmarks.router import time_router
    from ride_dive.engine import save_config

    _, weights = stage1
    cfg = tiny_cfg(**{**RIDE, **ROUTER_STAGE, "MODEL.WEIGHTS": weights})
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    save_config(cfg)  # what tools/train_net.py writes; the tool reads it
    time_router(cfg.OUTPUT_DIR, rounds=1)
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| router, threshold"))
    experts = float(row.split("|")[3])
    assert experts == pytest.approx(results["router"]["experts_used_mean"], abs=0.01)
    assert "| full ensemble (3 experts) |" in out and "wall-time speed-up" in out
