"""Optimizer and per-iteration learning-rate schedule."""

from .build import build_optimizer, describe_lr_scaling, effective_batch_size, scaled_base_lr
from .lr_scheduler import build_lr_scheduler, lr_multiplier

__all__ = [
    "build_optimizer",
    "build_lr_scheduler",
    "describe_lr_scaling",
    "effective_batch_size",
    "lr_multiplier",
    "scaled_base_lr",
]
