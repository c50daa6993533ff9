"""Shared fixtures for the modeling tests: a seeded RNG and a tiny CPU config."""

import pytest
import torch

from ride_dive.config import get_cfg


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def model_cfg():
    """Default config at a quarter of the published width, on the CPU."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.WIDTH_MULT = 0.25
    cfg.MODEL.DEVICE = "cpu"
    return cfg
