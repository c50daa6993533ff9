"""Seeding, device selection and the autocast dtype."""

import random
from typing import Optional

import numpy as np
import torch


def seed_all(seed: int) -> None:
    """Seed python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A seed that depends on (seed, epoch, rank) only: what makes an epoch replayable."""
    return (seed * 1_000_003 + epoch * 10_007 + rank * 101) % 2**31


def resolve_device(name: str) -> torch.device:
    """Turn ``MODEL.DEVICE`` into a device: "auto" is cuda when available, else cpu.

    "cuda" / "auto" resolve to this process's current GPU (``cuda:<local rank>`` in a
    multi-GPU run), so every process uses its own device.
    """
    from ..config import ConfigError

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"MODEL.DEVICE='{name}' is not a device (use auto, cpu, cuda, cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"MODEL.DEVICE='{name}' but CUDA is not available; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is None:
        # The launcher set each process's GPU (its local rank); DDP needs the index.
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _autocast_dtype(amp) -> Optional[torch.dtype]:
    return getattr(torch, amp.DTYPE) if amp.ENABLED else None


def amp_dtype(cfg) -> Optional[torch.dtype]:
    """The training autocast dtype (``cfg.SOLVER.AMP``), or None when AMP is off.

    It also covers what a method computes for training outside the training step (the DiVE
    teacher's virtual examples, the ``auto`` temperature).
    """
    return _autocast_dtype(cfg.SOLVER.AMP)


def eval_amp_dtype(cfg) -> Optional[torch.dtype]:
    """The evaluation autocast dtype (``cfg.TEST.AMP``), or None (fp32, the default).

    Every evaluation uses it, never ``SOLVER.AMP``: evaluation numbers do not depend on the
    training precision.
    """
    return _autocast_dtype(cfg.TEST.AMP)
