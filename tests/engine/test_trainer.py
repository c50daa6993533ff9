"""The trainer on tiny synthetic data: loss falls, exact resume, NaN stop, model selection."""

import json
import os

import pytest
import torch

from ride_dive.checkpoint import Checkpointer
from ride_dive.engine import DefaultTrainer, HookBase
from ride_dive.utils.logger import setup_logger

setup_logger("", rank=1)  # quiet


class _RecordLoss(HookBase):
    def __init__(self):
        self.losses = []

    def after_step(self):
        self.losses.append(self.trainer.storage.latest()["total_loss"][0])


class _Interrupt(HookBase):
    """Simulates a crash right after the checkpoint of epoch ``after_epoch`` is written."""

    class Crash(Exception):
        pass

    def __init__(self, after_epoch):
        self.after = after_epoch

    def after_epoch(self):
        if self.trainer.epoch + 1 == self.after:
            raise self.Crash


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_short_training_run_loss_falls(tiny_cfg):
    cfg = tiny_cfg(**{"SOLVER.MAX_EPOCHS": 10, "SOLVER.BASE_LR": 0.1, "DATASETS.MAX_PER_CLASS": 80})
    trainer = DefaultTrainer(cfg)
    rec = _RecordLoss()
    trainer.trainer.register_hooks([rec])
    results = trainer.train()
    per_epoch = len(trainer.trainer.data_loader)
    first, last = rec.losses[:per_epoch], rec.losses[-per_epoch:]
    # The last epoch's mean loss against the first: 0.63 was seen with one thread, less with
    # two (the thread count changes the reduction order, so the trajectory); a run that does
    # not learn stays near 1.
    assert sum(last) / len(last) < 0.75 * sum(first) / len(first)
    # 10 classes, chance 10%; the exact value moves with the thread count (26-40% seen).
    assert results["top1"] > 20.0
    saved = json.load(open(os.path.join(cfg.OUTPUT_DIR, "results.json")))
    # Training counts 80..8: medium and few groups exist, "many" (> 100) must be omitted.
    assert "many" not in saved
    for key in ("top1", "top5", "medium", "few", "per_class", "ece"):
        assert key in saved
    assert len(saved["per_class"]) == 10
    lines = open(os.path.join(cfg.OUTPUT_DIR, "metrics.json")).read().splitlines()
    assert any("total_loss" in json.loads(line) for line in lines)
    assert os.path.isdir(os.path.join(cfg.OUTPUT_DIR, "tensorboard"))


def test_resume_after_interruption_gives_identical_weights(tiny_cfg, tmp_path):
    straight = DefaultTrainer(tiny_cfg(output_dir=tmp_path / "a"))
    straight.trainer.train(0)

    cfg_b = tiny_cfg(output_dir=tmp_path / "b")
    crashed = DefaultTrainer(cfg_b)
    crashed.trainer.register_hooks([_Interrupt(after_epoch=2)])
    with pytest.raises(_Interrupt.Crash):
        crashed.trainer.train(0)
    del crashed
    torch.manual_seed(12345)  # a different global RNG state must not matter
    resumed = DefaultTrainer(cfg_b)
    resumed.resume_or_load(resume=True)
    assert resumed.start_epoch == 2
    resumed.trainer.train(resumed.start_epoch)

    a, b = _state(straight.model), _state(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    lr_a = straight.optimizer.param_groups[0]["lr"]
    assert lr_a == resumed.optimizer.param_groups[0]["lr"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_cfg):
    cfg = tiny_cfg()
    trainer = DefaultTrainer(cfg)

    class _Poison(HookBase):
        def after_epoch(self):
            if self.trainer.epoch == 1:
                with torch.no_grad():
                    next(self.trainer.model.parameters()).fill_(float("nan"))

    trainer.trainer.register_hooks([_Poison()])
    with pytest.raises(FloatingPointError, match="epoch 2"):
        trainer.train()
    good = os.path.join(cfg.OUTPUT_DIR, "model_epoch_0002.pth")
    assert os.path.isfile(good)
    assert not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    weights = torch.load(good, weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_best_checkpoint_only_with_validation_split(tiny_cfg, tmp_path):
    with_val = tiny_cfg(
        output_dir=tmp_path / "v",
        **{
            "DATASETS.VAL_SOURCE": "test",
            "DATASETS.VAL_PER_CLASS": 5,
            "TEST.EVAL_PERIOD": 1,
            "TEST.USE_BEST": True,
        },
    )
    t = DefaultTrainer(with_val)
    results = t.train()
    assert os.path.isfile(os.path.join(with_val.OUTPUT_DIR, "model_best.pth"))
    assert results["weights"].startswith("best") and "val" in results

    no_val = tiny_cfg(output_dir=tmp_path / "n", **{"TEST.EVAL_PERIOD": 1, "TEST.USE_BEST": True})
    results = DefaultTrainer(no_val).train()
    assert not os.path.exists(os.path.join(no_val.OUTPUT_DIR, "model_best.pth"))
    assert results["weights"] == "final"


def test_eval_only_reproduces_final_results(tiny_cfg):
    cfg = tiny_cfg(**{"SOLVER.MAX_EPOCHS": 2})
    trained = DefaultTrainer(cfg).train()
    fresh = DefaultTrainer(cfg)
    Checkpointer(fresh.model, cfg.OUTPUT_DIR).load(
        os.path.join(cfg.OUTPUT_DIR, "model_final.pth"), checkpointables=[]
    )
    again = fresh.test()
    assert again["top1"] == pytest.approx(trained["top1"])
    assert again["per_class"] == pytest.approx(trained["per_class"])


def test_periodic_writer_writes_each_epoch_end_once():
    from types import SimpleNamespace

    from ride_dive.engine.hooks import PeriodicWriter

    written = []
    writer = SimpleNamespace(write=lambda storage: written.append(trainer.iter), close=lambda: None)
    hook = PeriodicWriter([writer], period=2)
    trainer = SimpleNamespace(iter=0, iters_per_epoch=4, max_iter=8, storage=None)
    hook.trainer = trainer
    for it in range(8):
        trainer.iter = it
        hook.after_step()
        if (it + 1) % 4 == 0:
            hook.after_epoch()
    # Iterations 2 and 6 by period; 4 and 8 (epoch ends, after evaluation) once each.
    assert written == [1, 3, 5, 7]


def test_label_shift_table_in_results_when_asked(tiny_cfg):
    """TEST.LABEL_SHIFT: 11 protocols x with/without PC from the final test logits; the
    Uniform row without PC is the balanced test set, so it equals the headline top-1."""
    cfg = tiny_cfg(
        **{
            "SOLVER.MAX_EPOCHS": 2,
            "TEST.LABEL_SHIFT": True,
            "MODEL.LOSS.NAME": "BalancedSoftmaxLoss",
        }
    )
    results = DefaultTrainer(cfg).train()
    table = results["label_shift"]
    assert table["trained_with_prior_logits"] is True  # Balanced Softmax: + log p_target only
    rows = table["rows"]
    assert len(rows) == 22
    uniform = next(r for r in rows if r["protocol"] == "uniform" and not r["pc"])
    assert uniform["top1"] == pytest.approx(results["top1"])
    saved = json.load(open(os.path.join(cfg.OUTPUT_DIR, "results.json")))
    assert len(saved["label_shift"]["rows"]) == 22
    assert "label_shift" not in DefaultTrainer(tiny_cfg(**{"SOLVER.MAX_EPOCHS": 2})).train()


def test_an_evaluation_the_data_cannot_give_stops_the_run_before_training(tmp_path, monkeypatch):
    """TEST.LABEL_SHIFT on a test split lacking classes: the evaluator's check_data refuses
    it when the trainer is built, not after the epochs."""
    from ride_dive.data import build_datasets
    from ride_dive.data.errors import DatasetError
    from ride_dive.engine import defaults, setup_cfg
    from tests.conftest import tiny_overrides

    def without_classes(cfg):
        splits = build_datasets(cfg)
        splits.test = splits.test.subset((splits.test.labels != 4).nonzero().flatten().numpy())
        return splits

    monkeypatch.setattr(defaults, "build_datasets", without_classes)
    cfg = setup_cfg("", tiny_overrides(tmp_path, **{"TEST.LABEL_SHIFT": True}))
    with pytest.raises(DatasetError, match=r"none of 1 of its 10 classes \(4\)"):
        DefaultTrainer(cfg)
    assert not any(name.endswith(".pth") for name in os.listdir(tmp_path))
