"""Training with MixUp / CutMix through the config: runs, resumes exactly, refuses LDAM."""

import pytest
import torch

from ride_dive.config import ConfigError
from ride_dive.data import MixedBatches
from ride_dive.engine import DefaultTrainer, HookBase
from ride_dive.utils.logger import setup_logger
from tests.conftest import RIDE_OVERRIDES
from tests.engine.resume_check import assert_resume_is_exact
from tests.engine.test_distillation import teacher_run  # noqa: F401  (the fixture)

setup_logger("", rank=1)  # quiet

MIX = {"INPUT.MIXUP_ALPHA": 0.4, "INPUT.CUTMIX_ALPHA": 1.0, "INPUT.MIX_OFF_EPOCHS": 1}


class _Targets(HookBase):
    """Records the dtype of each epoch's first batch of targets."""

    def __init__(self):
        self.kinds = {}

    def before_epoch(self):
        _, targets = next(iter(self.trainer.data_loader))
        self.kinds[self.trainer.epoch] = targets.dtype


def test_mixed_training_switches_off_for_the_last_epoch_and_resumes_exactly(tiny_cfg, tmp_path):
    watched = DefaultTrainer(tiny_cfg(output_dir=tmp_path / "w", **MIX))
    assert isinstance(watched.trainer.data_loader, MixedBatches)
    kinds = _Targets()  # draws batches itself, so this run is not the one compared below
    watched.trainer.register_hooks([kinds])
    watched.trainer.train(0)
    assert kinds.kinds == {0: torch.float32, 1: torch.float32, 2: torch.float32, 3: torch.int64}
    assert_resume_is_exact(tiny_cfg, tmp_path, **MIX)


def test_ride_with_bsce_experts_trains_on_mixed_batches(tiny_cfg):
    trainer = DefaultTrainer(
        tiny_cfg(**RIDE_OVERRIDES, **MIX, **{"MODEL.RIDE.NUM_EXPERTS": 2, "SOLVER.MAX_EPOCHS": 2})
    )
    trainer.trainer.train(0)
    losses = trainer.trainer.storage.latest()
    assert all(torch.isfinite(torch.tensor(v[0])) for k, v in losses.items() if "loss" in k)


def test_ldam_with_mixing_is_a_config_error_before_training(tiny_cfg):
    with pytest.raises(ConfigError, match="LDAMLoss"):
        DefaultTrainer(tiny_cfg(**{"MODEL.LOSS.NAME": "LDAMLoss"}, **MIX))


class _WatchTeacher(HookBase):
    """Records what the student's backbone, the teacher and the loss receive."""

    def __init__(self):
        self.student, self.teacher, self.targets = [], [], []

    def before_train(self):
        model = self.trainer.model
        model.backbone.register_forward_pre_hook(lambda m, i: self.student.append(i[0].clone()))
        model.teacher.model.register_forward_pre_hook(
            lambda m, i: self.teacher.append(i[0].clone())
        )
        model.loss.register_forward_pre_hook(lambda m, i: self.targets.append(i[1].clone()))


def test_the_teacher_sees_the_students_mixed_batch(tiny_cfg, teacher_run):  # noqa: F811
    config, weights = teacher_run
    cfg = tiny_cfg(
        **{
            "MODEL.LOSS.NAME": "DiVELoss",
            "MODEL.TEACHER.CONFIG_FILE": config,
            "MODEL.TEACHER.WEIGHTS": weights,
            "SOLVER.MAX_EPOCHS": 2,
            "INPUT.MIXUP_ALPHA": 0.4,
        }
    )
    trainer = DefaultTrainer(cfg)
    watch = _WatchTeacher()
    trainer.trainer.register_hooks([watch])  # after PrepareForTraining: the teacher exists
    trainer.trainer.train(0)
    assert len(watch.student) == len(watch.teacher) == 2 * trainer.trainer.iters_per_epoch
    assert all(torch.equal(s, t) for s, t in zip(watch.student, watch.teacher))
    assert all(t.dtype == torch.float32 and t.dim() == 2 for t in watch.targets)
