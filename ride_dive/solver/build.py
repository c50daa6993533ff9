"""Optimizer construction."""

from typing import Dict, List

import torch
from torch import nn

from ..config import ConfigError, configurable

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def _lr_scales(model: nn.Module, backbone_lr_factor: float, layer_decay: float) -> Dict[str, float]:
    """Parameter name -> learning-rate multiplier (fine-tuning a pretrained trunk).

    Parameters under ``backbone.`` get ``backbone_lr_factor``; with ``layer_decay`` < 1 a
    backbone parameter of depth d (``backbone.layer_ids()``, 0 = the input side) out of D
    layer groups gets a further ``layer_decay ** (D - d)``, so the last group trains at
    ``layer_decay`` times the heads' rate and the embeddings slowest. Everything else
    (heads, routers) gets 1.
    """
    scales = {}
    backbone = getattr(model, "backbone", None)
    ids = {}
    if layer_decay < 1.0 and backbone is not None:
        layer_ids = getattr(backbone, "layer_ids", None)
        if layer_ids is None:
            raise ConfigError(
                f"SOLVER.LAYER_DECAY {layer_decay} needs a backbone that numbers its layers; "
                f"{type(backbone).__name__} does not (the library trunks, TimmBackbone and "
                "TorchvisionBackbone and their RIDE versions, do). Set SOLVER.LAYER_DECAY 1.0."
            )
        ids = layer_ids()
    depth = max(ids.values(), default=0) + 1
    for name, _ in model.named_parameters():
        if name.startswith("backbone."):
            d = ids.get(name[len("backbone.") :], depth - 1)
            scales[name] = backbone_lr_factor * layer_decay ** (depth - d)
        else:
            scales[name] = 1.0
    return scales


def _param_groups(
    model: nn.Module,
    weight_decay: float,
    decay_norm: bool,
    lr: float,
    backbone_lr_factor: float = 1.0,
    layer_decay: float = 1.0,
) -> List[Dict]:
    """Trainable parameters grouped by (learning rate, weight decay).

    BN/bias parameters are optionally exempt from weight decay. Frozen parameters
    (``requires_grad=False``) are left out, so a frozen backbone or a teacher can never be
    updated, not even by weight decay. Groups come largest learning rate first (the one the
    log shows), each with ``lr`` and its ``lr_scale``.
    """
    scales = _lr_scales(model, backbone_lr_factor, layer_decay)
    names = {id(p): n for n, p in model.named_parameters()}
    groups: Dict[tuple, List] = {}
    seen = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            exempt = isinstance(module, _NORM_TYPES) or name == "bias"
            decay = 0.0 if exempt and not decay_norm else weight_decay
            scale = scales.get(names.get(id(param), ""), 1.0)
            groups.setdefault((scale, decay), []).append(param)
    if not groups:
        return [{"params": [], "weight_decay": weight_decay}]
    return [
        {"params": params, "weight_decay": decay, "lr": lr * scale, "lr_scale": scale}
        for (scale, decay), params in sorted(groups.items(), key=lambda kv: (-kv[0][0], -kv[0][1]))
    ]


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
        "name": s.OPTIMIZER,
        "backbone_lr_factor": s.BACKBONE_LR_FACTOR,
        "layer_decay": s.LAYER_DECAY,
    }


@configurable(from_config=_optimizer_from_config)
def build_optimizer(
    model: nn.Module,
    lr: float = 0.1,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 5e-4,
    decay_norm: bool = True,
    name: str = "SGD",
    backbone_lr_factor: float = 1.0,
    layer_decay: float = 1.0,
) -> torch.optim.Optimizer:
    """SGD (or AdamW) over the trainable parameters of ``model``.

    Call as ``build_optimizer(cfg, model)`` or with explicit keyword arguments.
    ``backbone_lr_factor`` and ``layer_decay`` give the backbone's parameters smaller
    learning rates (see ``_lr_scales``); ``lr`` is the heads'.
    """
    groups = _param_groups(model, weight_decay, decay_norm, lr, backbone_lr_factor, layer_decay)
    if not any(g["params"] for g in groups):
        raise ConfigError(
            "The model has no trainable parameters; nothing to optimise. (An evaluation-only "
            "head such as NCMHead with MODEL.BACKBONE.FREEZE True: leave the backbone "
            "unfrozen and run with --eval-only.)"
        )
    if name == "AdamW":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
