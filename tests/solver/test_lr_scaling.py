"""Linear LR scaling: SOLVER.BASE_LR is for SOLVER.REFERENCE_BATCH_SIZE images per step."""

import pytest
import torch

from ride_dive.config import ConfigError, get_cfg
from ride_dive.solver import build_optimizer, describe_lr_scaling, scaled_base_lr


def _cfg(base_lr, batch, reference):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = base_lr
    cfg.SOLVER.BATCH_SIZE = batch
    cfg.SOLVER.REFERENCE_BATCH_SIZE = reference
    return cfg


@pytest.mark.parametrize(
    "batch, reference, expected",
    [
        (256, 256, 0.1),  # the published batch: the published LR
        (1024, 256, 0.4),  # 4x the images per step: 4x the LR
        (64, 256, 0.025),
        (512, 0, 0.1),  # 0: BASE_LR is for BATCH_SIZE itself, no scaling
    ],
)
def test_lr_scales_linearly_with_the_global_batch(batch, reference, expected):
    cfg = _cfg(0.1, batch, reference)
    assert scaled_base_lr(cfg) == pytest.approx(expected)
    model = torch.nn.Linear(2, 2)
    assert build_optimizer(cfg, model).param_groups[0]["lr"] == pytest.approx(expected)


def test_log_line_names_reference_global_batch_and_processes():
    line = describe_lr_scaling(_cfg(0.2, 1024, 512), world_size=8)
    assert line.startswith("Learning rate 0.4:")
    assert "batch of 512 (SOLVER.REFERENCE_BATCH_SIZE)" in line
    assert "effective batch 1024 (SOLVER.BATCH_SIZE = 8 process(es) x 128 images)" in line


def test_dataset_base_configs_state_their_reference_batch():
    import glob
    import os

    from tests.conftest import ROOT

    for path in glob.glob(os.path.join(ROOT, "configs", "Base-*.yaml")):
        cfg = get_cfg()
        cfg.merge_from_file(path)
        assert cfg.SOLVER.REFERENCE_BATCH_SIZE == cfg.SOLVER.BATCH_SIZE, path


def test_negative_reference_batch_is_rejected(tiny_cfg):
    with pytest.raises(ConfigError, match="REFERENCE_BATCH_SIZE"):
        tiny_cfg(**{"SOLVER.REFERENCE_BATCH_SIZE": -1})
