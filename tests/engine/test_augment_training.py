"""RandAugment + Cutout through the trainer: a resumed run replays the augmentation."""

import pytest
import torch

from ride_dive.engine import DefaultTrainer, HookBase
from ride_dive.utils.logger import setup_logger

setup_logger("", rank=1)  # quiet

STRONG = {"INPUT.AUGMENT_POLICY": "RandAugment", "INPUT.CUTOUT": 6, "SOLVER.MAX_EPOCHS": 3}


class _Crash(HookBase):
    class Stop(Exception):
        pass

    def after_epoch(self):
        if self.trainer.epoch == 1:
            raise self.Stop


def test_strongly_augmented_run_resumes_exactly(tiny_cfg, tmp_path):
    straight = DefaultTrainer(tiny_cfg(output_dir=tmp_path / "a", **STRONG))
    assert straight.trainer.data_loader.augment.policy is not None
    straight.trainer.train(0)
    cfg_b = tiny_cfg(output_dir=tmp_path / "b", **STRONG)
    crashed = DefaultTrainer(cfg_b)
    crashed.trainer.register_hooks([_Crash()])
    with pytest.raises(_Crash.Stop):
        crashed.trainer.train(0)
    torch.manual_seed(4321)
    resumed = DefaultTrainer(cfg_b)
    resumed.resume_or_load(resume=True)
    resumed.trainer.train(resumed.start_epoch)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
