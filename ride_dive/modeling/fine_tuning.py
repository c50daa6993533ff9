"""Fine-tuning controls applied to a built model: freezing by name, and LoRA.

* :func:`freeze_matching` stops gradients to every parameter whose full name matches one of
  ``MODEL.BACKBONE.FREEZE_PATTERNS`` (``re.search``).
* :func:`add_lora` gives the backbone's ``nn.Linear`` layers whose names match
  ``MODEL.LORA.TARGETS`` a trainable low-rank update (Hu et al. 2022, "LoRA"):
  ``y = W x + b + (alpha / r) B A x`` with ``A`` (r x in) Kaiming-uniform and ``B`` (out x r)
  zero, so the model computes exactly what it did before the first step; every other
  backbone parameter is frozen. The layers keep their own parameter names (``qkv.weight``)
  and gain ``qkv.lora_a.weight`` / ``qkv.lora_b.weight``, so a pretrained file still loads
  by name and a LoRA checkpoint holds the whole model. The update is added by a forward
  hook, which ``copy.deepcopy`` and ``torch.compile`` carry along.
"""

import logging
import math
import re
from typing import Iterable

import torch
from torch import nn

from ..config import ConfigError

__all__ = ["add_lora", "freeze_matching", "apply_fine_tuning", "count_parameters"]

logger = logging.getLogger("ride_dive")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (only the trainable ones with ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def freeze_matching(model: nn.Module, patterns: Iterable[str]) -> int:
    """``requires_grad_(False)`` on every parameter whose name matches a pattern.

    Returns the number of parameter tensors frozen.

    Raises:
        ConfigError: a pattern that matches no parameter (most likely a typo).
    """
    frozen = 0
    for pattern in patterns:
        regex = re.compile(pattern)
        hits = [p for n, p in model.named_parameters() if regex.search(n)]
        if not hits:
            names = [n for n, _ in model.named_parameters()][:4]
            raise ConfigError(
                f"MODEL.BACKBONE.FREEZE_PATTERNS: '{pattern}' matches no parameter of the model "
                f"(names look like {', '.join(names)} ...)"
            )
        for p in hits:
            p.requires_grad_(False)
        frozen += len(hits)
    return frozen


def _add_low_rank_update(module: nn.Linear, args, output: torch.Tensor) -> torch.Tensor:
    return output + module.lora_b(module.lora_a(args[0])) * module.lora_scaling


def add_lora(backbone: nn.Module, rank: int, alpha: float, targets: str) -> int:
    """Add LoRA updates to ``backbone``'s matching linear layers and freeze the rest of it.

    Returns the number of layers adapted.

    Raises:
        ConfigError: no ``nn.Linear`` of the backbone matches ``targets``.
    """
    regex = re.compile(targets)
    layers = [
        (n, m) for n, m in backbone.named_modules() if isinstance(m, nn.Linear) and regex.search(n)
    ]
    if not layers:
        linear = [n for n, m in backbone.named_modules() if isinstance(m, nn.Linear)][:4]
        raise ConfigError(
            f"MODEL.LORA.TARGETS '{targets}' matches no nn.Linear of the backbone "
            f"({type(backbone).__name__}; its linear layers: {', '.join(linear) or 'none'}). "
            "LoRA adapts linear layers, as in transformers' attention and MLP blocks."
        )
    backbone.requires_grad_(False)
    for _, layer in layers:
        weight = layer.weight
        layer.lora_a = nn.Linear(layer.in_features, rank, bias=False)
        layer.lora_b = nn.Linear(rank, layer.out_features, bias=False)
        nn.init.kaiming_uniform_(layer.lora_a.weight, a=math.sqrt(5))
        nn.init.zeros_(layer.lora_b.weight)
        layer.lora_a.to(device=weight.device, dtype=weight.dtype)
        layer.lora_b.to(device=weight.device, dtype=weight.dtype)
        layer.lora_scaling = alpha / rank
        layer.register_forward_hook(_add_low_rank_update)
    return len(layers)


def apply_fine_tuning(model: nn.Module, cfg) -> None:
    """``MODEL.LORA`` then ``MODEL.BACKBONE.FREEZE_PATTERNS`` on a built model; logs the
    trainable parameter count when either is in use."""
    lora, patterns = cfg.MODEL.LORA, list(cfg.MODEL.BACKBONE.FREEZE_PATTERNS)
    if lora.RANK <= 0 and not patterns:
        return
    notes = []
    if lora.RANK > 0:
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise ConfigError("MODEL.LORA.RANK > 0 needs a model with a backbone")
        layers = add_lora(backbone, lora.RANK, lora.ALPHA, lora.TARGETS)
        notes.append(f"LoRA rank {lora.RANK} on {layers} linear layers")
    if patterns:
        notes.append(f"{freeze_matching(model, patterns)} tensors frozen by FREEZE_PATTERNS")
    logger.info(
        "Fine-tuning: %s; trainable parameters %s of %s",
        ", ".join(notes),
        f"{count_parameters(model, trainable_only=True):,}",
        f"{count_parameters(model):,}",
    )
