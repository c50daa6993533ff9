"""Optimizer and per-iteration learning-rate schedule."""
from .build import build_optimizer
from .lr_scheduler import build_lr_scheduler, lr_multiplier

__all__ = ["build_optimizer", "build_lr_scheduler", "lr_multiplier"]
