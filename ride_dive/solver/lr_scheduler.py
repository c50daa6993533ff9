"""Per-iteration learning-rate schedule: linear warm-up, then multistep or cosine.

Schedules are configured in epochs (long-tailed recipes are epoch based) and converted to
iterations here, once, from the number of iterations per epoch.
"""

import math
from typing import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR


def lr_multiplier(
    iteration: int,
    iters_per_epoch: int,
    max_epochs: int,
    warmup_epochs: float = 0,
    warmup_factor: float = 0.0,
    schedule: str = "multistep",
    steps: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    """Factor applied to the base LR at ``iteration`` (0-based, counted from the start).

    Warm-up rises linearly per iteration from ``warmup_factor`` to 1 over ``warmup_epochs``;
    the first iteration already uses ``warmup_factor + 1/warmup_iters`` of the way so that
    no step is wasted at LR 0. Multistep multiplies by ``gamma`` at each epoch in ``steps``;
    cosine decays from 1 at the end of warm-up to 0 at the last iteration.
    """
    warmup_iters = int(round(warmup_epochs * iters_per_epoch))
    total_iters = max_epochs * iters_per_epoch
    if iteration < warmup_iters:
        alpha = (iteration + 1) / warmup_iters
        return warmup_factor + (1.0 - warmup_factor) * alpha
    if schedule == "cosine":
        span = max(total_iters - warmup_iters, 1)
        progress = min((iteration - warmup_iters) / span, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    passed = sum(iteration >= s * iters_per_epoch for s in steps)
    return gamma**passed


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer, iters_per_epoch: int) -> LambdaLR:
    """A ``LambdaLR`` stepped once per iteration, following ``cfg.SOLVER``."""
    s = cfg.SOLVER
    args = dict(
        iters_per_epoch=iters_per_epoch,
        max_epochs=s.MAX_EPOCHS,
        warmup_epochs=s.WARMUP_EPOCHS,
        warmup_factor=s.WARMUP_FACTOR,
        schedule=s.LR_SCHEDULER,
        steps=tuple(s.STEPS),
        gamma=s.GAMMA,
    )
    return LambdaLR(optimizer, lambda it: lr_multiplier(it, **args))
