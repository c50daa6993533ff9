"""EvalHook, PeriodicCheckpointer, IterationTimer and PeriodicWriter, each driven by a fake
trainer that has only what the hooks read: ``epoch``, ``max_epochs``, ``iter``, ``storage``,
``model`` and the real ``hooks_state_dict`` / ``load_hooks_state_dict``."""

import os
from types import SimpleNamespace

import pytest
import torch

from ride_dive.checkpoint import Checkpointer
from ride_dive.engine import hooks
from ride_dive.engine.train_loop import HookBase, SimpleTrainer
from ride_dive.utils.events import EventStorage, default_writers
from ride_dive.utils.run_dir import RunDir, periodic_checkpoint_name

ITERS_PER_EPOCH = 5


class _Model(torch.nn.Module):
    """A student with a frozen part: ``frozen`` stays in eval mode while the rest trains."""

    def __init__(self):
        super().__init__()
        self.trained = torch.nn.Linear(2, 2)
        self.frozen = torch.nn.BatchNorm1d(2).eval()


class FakeTrainer:
    """The epoch loop of ``SimpleTrainer.train`` without data: after each epoch ``iter`` is
    the next iteration and ``storage.iter`` the epoch's last one, as in the real loop."""

    hooks_state_dict = SimpleTrainer.hooks_state_dict
    load_hooks_state_dict = SimpleTrainer.load_hooks_state_dict

    def __init__(self, max_epochs, hook_list):
        self.max_epochs = max_epochs
        self.epoch = 0
        self.iter = 0
        self.storage = EventStorage()
        self.model = _Model()
        self._hooks = list(hook_list)
        for hook in self._hooks:
            hook.trainer = self

    def train(self, start_epoch=0, stop_after=None):
        """Epochs ``start_epoch..max_epochs-1``; ``stop_after=e`` raises after epoch e (a
        crash), which still runs ``after_train`` as the real loop's ``finally`` does."""
        self.iter = start_epoch * ITERS_PER_EPOCH
        try:
            for hook in self._hooks:
                hook.before_train()
            for self.epoch in range(start_epoch, self.max_epochs):
                self.storage.epoch = self.epoch
                self.iter += ITERS_PER_EPOCH
                self.storage.iter = self.iter - 1
                for hook in self._hooks:
                    hook.after_epoch()
                if stop_after == self.epoch:
                    raise KeyboardInterrupt
            self.epoch = self.max_epochs
        finally:
            for hook in self._hooks:
                hook.after_train()


class FakeCheckpointer:
    periodic_name = staticmethod(Checkpointer.periodic_name)

    def __init__(self):
        self.saved = []  # (name, keyword arguments)

    def save(self, name, **kwargs):
        self.saved.append((name, kwargs))


def _scripted_eval(trainer_box, scores, metric="top1"):
    """An eval_fn returning the next score, as the evaluator does (model left in eval)."""
    scores = iter(scores)

    def eval_fn():
        trainer_box[0].model.eval()
        return {
            metric: next(scores),
            "top5": 99.0,
            "num_samples": 40,
            "per_class": [1.0, 2.0],
            "label": "not a number",
        }

    return eval_fn


def _eval_hook(scores, period=2, best=None, metric="top1", split="val"):
    box = []
    hook = hooks.EvalHook(
        period, _scripted_eval(box, scores, metric), split, best_checkpointer=best, metric=metric
    )
    return hook, box


# --- EvalHook -----------------------------------------------------------------------------


def test_eval_runs_after_every_period_th_epoch_only():
    epochs = []
    hook = hooks.EvalHook(3, lambda: epochs.append(trainer.epoch + 1) or {"top1": 1.0}, "test")
    trainer = FakeTrainer(10, [hook])
    trainer.train()
    assert epochs == [3, 6, 9]


def test_eval_period_zero_never_evaluates():
    hook = hooks.EvalHook(0, lambda: pytest.fail("evaluated"), "test")
    FakeTrainer(4, [hook]).train()


def test_eval_records_numeric_results_unsmoothed_at_the_epochs_last_iteration():
    best = FakeCheckpointer()
    hook, box = _eval_hook([50.0, 70.0], period=1, best=best)
    trainer = FakeTrainer(2, [hook])
    box.append(trainer)
    trainer.train()
    # Epoch 1 (iterations 5-9): the second evaluation, recorded at iteration 9.
    assert trainer.storage.latest() == {
        "val/top1": (70.0, 9),
        "val/top5": (99.0, 9),
        "val/num_samples": (40.0, 9),
    }
    # smoothing=False: the value itself, not the median of 50 and 70.
    assert trainer.storage.latest_smoothed()["val/top1"] == (70.0, 9)


def test_eval_tracks_the_best_and_saves_model_best_only_when_it_improves():
    best = FakeCheckpointer()
    hook, box = _eval_hook([50.0, 70.0, 60.0, 70.0], period=2, best=best)
    trainer = FakeTrainer(8, [hook])
    box.append(trainer)
    trainer.train()
    # Evaluated after epochs 2, 4, 6, 8; a tie (70 again at 8) is not an improvement.
    assert best.saved == [
        ("model_best", {"tag_last": False, "epoch": 2, "val_top1": 50.0}),
        ("model_best", {"tag_last": False, "epoch": 4, "val_top1": 70.0}),
    ]
    assert (hook.best_score, hook.best_epoch) == (70.0, 4)
    assert hook.state_dict() == {"best_score": 70.0, "best_epoch": 4}
    # Whatever the evaluation did to the modes, each module gets its own back: the model
    # trains on, its frozen part stays in eval mode.
    assert trainer.model.training and trainer.model.trained.training
    assert not trainer.model.frozen.training


def test_eval_selects_on_the_configured_metric_and_split():
    best = FakeCheckpointer()
    hook, box = _eval_hook([10.0, 5.0, 12.0], period=1, best=best, metric="few", split="val")
    trainer = FakeTrainer(3, [hook])
    box.append(trainer)
    trainer.train()
    assert [(kw["epoch"], kw["val_few"]) for _, kw in best.saved] == [(1, 10.0), (3, 12.0)]


def test_without_a_best_checkpointer_nothing_is_selected_or_saved():
    hook, box = _eval_hook([50.0, 70.0], period=1, split="test")
    trainer = FakeTrainer(2, [hook])
    box.append(trainer)
    trainer.train()
    assert trainer.storage.latest()["test/top1"] == (70.0, 9)
    assert hook.best_score is None and hook.best_epoch is None
    assert hook.state_dict() == {}
    assert trainer.hooks_state_dict() == {}  # nothing to resume


def test_resume_keeps_the_best_so_far():
    best = FakeCheckpointer()
    hook, box = _eval_hook([50.0, 70.0], period=2, best=best)
    trainer = FakeTrainer(8, [hook])
    box.append(trainer)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(stop_after=3)  # evaluated after epochs 2 and 4, then crashed
    state = trainer.hooks_state_dict()
    assert state == {"EvalHook": {"best_score": 70.0, "best_epoch": 4}}

    best_after = FakeCheckpointer()
    resumed, box = _eval_hook([65.0, 75.0], period=2, best=best_after)
    trainer = FakeTrainer(8, [resumed])
    box.append(trainer)
    trainer.load_hooks_state_dict(state)
    assert (resumed.best_score, resumed.best_epoch) == (70.0, 4)
    trainer.train(start_epoch=4)
    # 65 after epoch 6 is below the best from before the crash: only 75 (epoch 8) is saved.
    assert [(kw["epoch"], kw["val_top1"]) for _, kw in best_after.saved] == [(8, 75.0)]
    assert resumed.state_dict() == {"best_score": 75.0, "best_epoch": 8}


def test_load_state_dict_of_a_run_without_a_best_yet():
    hook = hooks.EvalHook(1, lambda: {}, "val", best_checkpointer=FakeCheckpointer())
    hook.best_score, hook.best_epoch = 3.0, 1
    hook.load_state_dict({})
    assert hook.best_score is None and hook.best_epoch is None


# --- PeriodicCheckpointer -----------------------------------------------------------------


def test_saves_at_period_multiples_and_the_last_epoch_with_the_next_epoch():
    ckpt = FakeCheckpointer()
    FakeTrainer(8, [hooks.PeriodicCheckpointer(ckpt, period=3)]).train()
    assert [name for name, _ in ckpt.saved] == [
        "model_epoch_0003",
        "model_epoch_0006",
        "model_epoch_0008",
        "model_final",
    ]
    assert [name for name, _ in ckpt.saved[:3]] == [periodic_checkpoint_name(e) for e in (3, 6, 8)]
    periodic = [kw for _, kw in ckpt.saved[:3]]
    assert [kw["epoch"] for kw in periodic] == [3, 6, 8]
    assert [kw["iteration"] for kw in periodic] == [15, 30, 40]
    assert all(set(kw) == {"epoch", "iteration", "rng", "hooks"} for kw in periodic)
    assert all(torch.equal(kw["rng"]["torch"], torch.get_rng_state()) for kw in periodic)
    assert ckpt.saved[3] == ("model_final", {"epoch": 8})


def test_period_one_saves_every_epoch():
    ckpt = FakeCheckpointer()
    FakeTrainer(3, [hooks.PeriodicCheckpointer(ckpt, period=1)]).train()
    assert [(n, kw["epoch"]) for n, kw in ckpt.saved] == [
        ("model_epoch_0001", 1),
        ("model_epoch_0002", 2),
        ("model_epoch_0003", 3),
        ("model_final", 3),
    ]


def test_a_crashed_run_has_no_final_model_and_a_resumed_one_continues_the_numbering():
    ckpt = FakeCheckpointer()
    with pytest.raises(KeyboardInterrupt):
        FakeTrainer(6, [hooks.PeriodicCheckpointer(ckpt, period=2)]).train(stop_after=2)
    assert [n for n, _ in ckpt.saved] == ["model_epoch_0002"]
    ckpt.saved.clear()
    FakeTrainer(6, [hooks.PeriodicCheckpointer(ckpt, period=2)]).train(start_epoch=2)
    assert [(n, kw["epoch"]) for n, kw in ckpt.saved] == [
        ("model_epoch_0004", 4),
        ("model_epoch_0006", 6),
        ("model_final", 6),
    ]


def test_checkpoints_carry_the_best_score_of_the_same_epoch():
    """EvalHook runs before PeriodicCheckpointer, so a resumable file has this epoch's best."""
    ckpt, best = FakeCheckpointer(), FakeCheckpointer()
    eval_hook, box = _eval_hook([40.0, 30.0], period=2, best=best)
    trainer = FakeTrainer(4, [eval_hook, hooks.PeriodicCheckpointer(ckpt, period=2)])
    box.append(trainer)
    trainer.train()
    assert [(n, kw.get("hooks")) for n, kw in ckpt.saved] == [
        ("model_epoch_0002", {"EvalHook": {"best_score": 40.0, "best_epoch": 2}}),
        ("model_epoch_0004", {"EvalHook": {"best_score": 40.0, "best_epoch": 2}}),
        ("model_final", None),
    ]


def test_with_a_real_checkpointer_the_files_and_last_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 1)
    checkpointer = Checkpointer(model, str(tmp_path), max_to_keep=None)
    eval_hook, box = _eval_hook([40.0, 30.0, 35.0], period=1, best=checkpointer)
    trainer = FakeTrainer(3, [eval_hook, hooks.PeriodicCheckpointer(checkpointer, period=2)])
    box.append(trainer)
    trainer.train()
    run = RunDir(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [
        "last_checkpoint",
        "model_best.pth",
        "model_epoch_0002.pth",
        "model_epoch_0003.pth",
        "model_final.pth",
    ]
    with open(run.last_checkpoint) as f:
        assert f.read().strip() == "model_final.pth"  # model_best is never resumed from
    best = torch.load(run.best_model, weights_only=True)
    assert (best["epoch"], best["val_top1"]) == (1, 40.0)
    last = torch.load(run.checkpoint(periodic_checkpoint_name(3)), weights_only=True)
    assert (last["epoch"], last["iteration"]) == (3, 15)
    assert last["hooks"] == {"EvalHook": {"best_score": 40.0, "best_epoch": 1}}
    assert torch.load(run.final_model, weights_only=True)["epoch"] == 3


# --- IterationTimer -----------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """Replace the hooks module's clock with scripted readings (each used exactly once)."""
    readings = []

    def perf_counter():
        return readings.pop(0)

    monkeypatch.setattr(hooks, "time", SimpleNamespace(perf_counter=perf_counter))
    return readings


def test_iteration_timer_records_step_time_and_throughput(clock, log_lines):
    timer = hooks.IterationTimer(batch_size=32)
    timer.trainer = SimpleNamespace(storage=EventStorage())
    storage = timer.trainer.storage
    # before_train, then two steps (0.25 s and 0.5 s), then after_train.
    clock.extend([10.0, 10.5, 10.75, 11.0, 11.5, 22.25])
    timer.before_train()
    recorded = []
    for it in range(2):
        storage.iter = it
        timer.before_step()
        timer.after_step()
        recorded.append((storage.latest()["time"], storage.latest()["images_per_sec"]))
    timer.after_train()
    assert clock == []
    assert recorded == [((0.25, 0), (128.0, 0)), ((0.5, 1), (64.0, 1))]
    # Both smoothed over the window (upper median of two values: the second).
    assert storage.latest_smoothed()["time"] == (0.5, 1)
    assert log_lines == ["Training time: 12.2 s"]


def test_iteration_timer_sums_the_training_time_over_resumed_sessions(clock, log_lines):
    first = hooks.IterationTimer(batch_size=32)
    clock.extend([10.0, 22.25])
    first.before_train()
    first.after_train()
    state = first.state_dict()
    assert state == {"training_seconds": 12.25}

    resumed = hooks.IterationTimer(batch_size=32)
    resumed.load_state_dict(state)
    clock.extend([100.0, 101.5, 103.0])
    resumed.before_train()
    assert resumed.training_seconds == 13.75  # 12.25 before + 1.5 s into this session
    resumed.after_train()
    assert clock == []
    assert resumed.state_dict() == {"training_seconds": 15.25}
    assert log_lines == ["Training time: 12.2 s", "Training time: 3.0 s"]


def test_iteration_timer_survives_a_zero_length_step(clock):
    timer = hooks.IterationTimer(batch_size=8)
    timer.trainer = SimpleNamespace(storage=EventStorage())
    clock.extend([3.0, 3.0])
    timer.before_step()
    timer.after_step()
    latest = timer.trainer.storage.latest()
    assert latest["time"] == (0.0, 0)
    assert latest["images_per_sec"] == (8 / 1e-9, 0)  # clamped at 1 ns, not a division error


# --- PeriodicWriter -----------------------------------------------------------------------


class _Refuse(HookBase):
    """Stops the run before its first step, as a refused --resume or --eval-only does."""

    def before_train(self):
        raise RuntimeError("refused")


def test_a_run_stopped_before_training_leaves_no_metrics_or_event_file(tmp_path):
    writer = hooks.PeriodicWriter(default_writers(str(tmp_path), max_iter=10), period=2)
    with pytest.raises(RuntimeError, match="refused"):
        FakeTrainer(2, [_Refuse(), writer]).train()
    assert os.listdir(tmp_path) == []  # the writers were built and closed, never written


def test_the_writers_files_appear_with_the_first_write(tmp_path):
    writer = hooks.PeriodicWriter(default_writers(str(tmp_path), max_iter=10), period=2)
    trainer = FakeTrainer(1, [writer])
    trainer.iters_per_epoch = ITERS_PER_EPOCH
    trainer.storage.put_scalar("total_loss", 1.0)
    trainer.train()  # after_epoch writes
    assert sorted(os.listdir(tmp_path)) == ["metrics.json", "tensorboard"]
    assert os.listdir(tmp_path / "tensorboard")[0].startswith("events.out.tfevents")
    assert (tmp_path / "metrics.json").read_text().startswith('{"iteration": 0, "epoch": 0')
