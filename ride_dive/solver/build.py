"""Optimizer construction."""

from typing import Dict, List

import torch
from torch import nn

from ..config import ConfigError, configurable

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def _param_groups(model: nn.Module, weight_decay: float, decay_norm: bool) -> List[Dict]:
    """Trainable parameters, with BN/bias parameters optionally exempt from weight decay.

    Frozen parameters (``requires_grad=False``) are left out, so a frozen backbone or a
    teacher can never be updated, not even by weight decay.
    """
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            exempt = isinstance(module, _NORM_TYPES) or name == "bias"
            (no_decay if exempt and not decay_norm else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def effective_batch_size(cfg) -> int:
    """Images per optimizer step: ``SOLVER.BATCH_SIZE * SOLVER.ACCUMULATE_STEPS``."""
    return cfg.SOLVER.BATCH_SIZE * cfg.SOLVER.ACCUMULATE_STEPS


def scaled_base_lr(cfg) -> float:
    """The learning rate used for the effective batch: linear scaling from the reference.

    ``SOLVER.BASE_LR`` is the LR for ``SOLVER.REFERENCE_BATCH_SIZE`` images per step (0 =
    the effective batch, no scaling); the LR of an effective batch B (``SOLVER.BATCH_SIZE``
    x ``SOLVER.ACCUMULATE_STEPS``) is ``BASE_LR * B / REFERENCE_BATCH_SIZE`` (Goyal et al.'s
    linear scaling rule).
    """
    s = cfg.SOLVER
    batch = effective_batch_size(cfg)
    return s.BASE_LR * batch / (s.REFERENCE_BATCH_SIZE or batch)


def describe_lr_scaling(cfg, world_size: int) -> str:
    """One log line saying which LR is used and why (reference batch, effective batch)."""
    s = cfg.SOLVER
    batch = effective_batch_size(cfg)
    reference = s.REFERENCE_BATCH_SIZE or batch
    per_rank = s.BATCH_SIZE // max(world_size, 1)
    accumulation = (
        f" x {s.ACCUMULATE_STEPS} accumulated batches (SOLVER.ACCUMULATE_STEPS)"
        if s.ACCUMULATE_STEPS > 1
        else ""
    )
    return (
        f"Learning rate {scaled_base_lr(cfg):g}: SOLVER.BASE_LR {s.BASE_LR:g} is for a batch of "
        f"{reference} (SOLVER.REFERENCE_BATCH_SIZE), scaled linearly to the effective batch "
        f"{batch} (SOLVER.BATCH_SIZE = {world_size} process(es) x {per_rank} images"
        f"{accumulation})"
    )


def _optimizer_from_config(cfg, model):
    s = cfg.SOLVER
    return {
        "model": model,
        "lr": scaled_base_lr(cfg),
        "momentum": s.MOMENTUM,
        "nesterov": s.NESTEROV,
        "weight_decay": s.WEIGHT_DECAY,
        "decay_norm": s.WEIGHT_DECAY_NORM,
    }


@configurable(from_config=_optimizer_from_config)
def build_optimizer(
    model: nn.Module,
    lr: float = 0.1,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 5e-4,
    decay_norm: bool = True,
) -> torch.optim.Optimizer:
    """SGD over the trainable parameters of ``model``.

    Call as ``build_optimizer(cfg, model)`` or with explicit keyword arguments.
    """
    groups = _param_groups(model, weight_decay, decay_norm)
    if not any(g["params"] for g in groups):
        raise ConfigError(
            "The model has no trainable parameters; nothing to optimise. (An evaluation-only "
            "head such as NCMHead with MODEL.BACKBONE.FREEZE True: leave the backbone "
            "unfrozen and run with --eval-only.)"
        )
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
