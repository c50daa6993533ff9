"""RandAugment + Cutout through the trainer: a resumed run replays the augmentation."""

from ride_dive.utils.logger import setup_logger
from tests.engine.resume_check import assert_resume_is_exact

setup_logger("", rank=1)  # quiet

STRONG = {"INPUT.AUGMENT_POLICY": "RandAugment", "INPUT.CUTOUT": 6, "SOLVER.MAX_EPOCHS": 3}


def test_strongly_augmented_run_resumes_exactly(tiny_cfg, tmp_path):
    straight = assert_resume_is_exact(tiny_cfg, tmp_path, **STRONG)
    assert straight.trainer.data_loader.augment.policy is not None
