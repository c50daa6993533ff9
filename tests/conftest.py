"""Shared test helpers: tiny configs on the synthetic long-tailed set."""

import logging
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Two cores: keep intra-op threads at 2 so tests don't oversubscribe.
torch.set_num_threads(min(2, torch.get_num_threads()))


# A tiny-data RIDE model: RIDE ResNet-32, cosine heads, the RIDE loss with Balanced Softmax
# experts. Tests add MODEL.RIDE.NUM_EXPERTS and whatever their stage changes.
RIDE_OVERRIDES = {
    "MODEL.META_ARCHITECTURE": "RIDE",
    "MODEL.BACKBONE.NAME": "RIDEResNet32",
    "MODEL.HEAD.NAME": "CosineHead",
    "MODEL.LOSS.NAME": "RIDELoss",
    "MODEL.LOSS.RIDE.BASE_LOSS": "BalancedSoftmaxLoss",
    "MODEL.ROUTER.TOP_K": 5,
}


def tiny_overrides(output_dir, **extra):
    """Overrides for a ~1 s training run: tiny ResNet-32 on 10-class 16x16 synthetic data."""
    opts = {
        "MODEL.DEVICE": "cpu",
        "MODEL.BACKBONE.NAME": "ResNet32",
        "MODEL.BACKBONE.IN_CHANNELS": 3,
        "MODEL.BACKBONE.WIDTH_MULT": 0.25,
        "DATASETS.NAME": "SyntheticLT",
        "DATASETS.MAX_PER_CLASS": 40,
        "DATASETS.IMBALANCE_FACTOR": 10.0,
        "DATASETS.SYNTHETIC.NUM_CLASSES": 10,
        "DATASETS.SYNTHETIC.IMAGE_SIZE": 16,
        "INPUT.CROP_SIZE": 16,
        "INPUT.PADDING": 2,
        "SOLVER.BATCH_SIZE": 32,
        "SOLVER.BASE_LR": 0.05,
        "SOLVER.MAX_EPOCHS": 4,
        "SOLVER.WARMUP_EPOCHS": 1,
        "SOLVER.LR_SCHEDULER": "cosine",
        "SOLVER.CHECKPOINT_PERIOD": 1,
        "TEST.EVAL_PERIOD": 0,
        "TEST.BATCH_SIZE": 64,
        "LOG_PERIOD": 5,
        "OUTPUT_DIR": str(output_dir),
    }
    opts.update(extra)
    flat = []
    for k, v in opts.items():
        flat += [k, repr(v) if isinstance(v, str) else str(v)]
    return flat


@pytest.fixture
def tiny_cfg(tmp_path):
    """``tiny_cfg(**overrides)`` → a frozen, validated cfg writing into a temp dir."""
    from ride_dive.engine import setup_cfg

    def make(config_file="", output_dir=None, **extra):
        return setup_cfg(config_file, tiny_overrides(output_dir or tmp_path / "out", **extra))

    return make


@pytest.fixture
def log_lines():
    """Messages logged to the "ride_dive" logger (which may not propagate to the root)."""
    lines = []

    class _Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger("ride_dive")
    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)
