"""``build_*`` functions: look a registered name up in its registry and build it from cfg."""

from typing import Optional, Sequence

import torch
from torch import nn

from ..config import ConfigError
from ..utils.env import resolve_device
from ..utils.registry import lookup
from .backbones.library_trunk import warn_if_input_differs
from .fine_tuning import apply_fine_tuning
from .norm import to_group_norm
from .registry import BACKBONE_REGISTRY, HEAD_REGISTRY, LOSS_REGISTRY, META_ARCH_REGISTRY

__all__ = [
    "build_backbone",
    "build_head",
    "build_loss",
    "build_model",
    "check_soft_targets",
    "resolve_device",
]


def build_backbone(cfg) -> nn.Module:
    """Build ``MODEL.BACKBONE.NAME``; the result has the int attribute ``out_features``."""
    return lookup(BACKBONE_REGISTRY, cfg.MODEL.BACKBONE.NAME, "MODEL.BACKBONE.NAME")(cfg)


def build_head(cfg, in_features: int, num_classes: int) -> nn.Module:
    """Build ``MODEL.HEAD.NAME`` mapping ``(N, in_features)`` to ``(N, num_classes)``."""
    head_cls = lookup(HEAD_REGISTRY, cfg.MODEL.HEAD.NAME, "MODEL.HEAD.NAME")
    return head_cls(cfg, in_features=in_features, num_classes=num_classes)


def build_loss(cfg, class_counts: Optional[Sequence[int]]) -> nn.Module:
    """Build ``MODEL.LOSS.NAME`` for the given training class counts."""
    loss_cls = lookup(LOSS_REGISTRY, cfg.MODEL.LOSS.NAME, "MODEL.LOSS.NAME")
    return loss_cls(cfg, class_counts=class_counts)


def build_model(cfg, class_counts: Optional[Sequence[int]] = None) -> nn.Module:
    """Build ``MODEL.META_ARCHITECTURE`` on ``MODEL.DEVICE`` (channels_last if asked).

    Args:
        cfg: the config.
        class_counts: training images per class; needed by prior-aware losses and, when
            ``MODEL.NUM_CLASSES`` is 0, for the number of classes.

    Returns:
        The model, in train mode, with its weights randomly initialised (a library trunk's
        from ``MODEL.BACKBONE.PRETRAINED`` when set), LoRA layers and name-pattern freezing
        applied (``MODEL.LORA``, ``MODEL.BACKBONE.FREEZE_PATTERNS``), BatchNorm
        replaced by GroupNorm when ``MODEL.BACKBONE.NORM`` is "GN" (SyncBN is applied by the
        trainer of a multi-process run) (loading
        ``MODEL.WEIGHTS`` is the checkpointer's job).
    """
    arch = lookup(META_ARCH_REGISTRY, cfg.MODEL.META_ARCHITECTURE, "MODEL.META_ARCHITECTURE")
    model = arch(cfg, class_counts=class_counts)
    apply_fine_tuning(model, cfg)  # MODEL.LORA, MODEL.BACKBONE.FREEZE_PATTERNS
    warn_if_input_differs(getattr(model, "backbone", None), cfg)
    if cfg.MODEL.BACKBONE.NORM == "GN":
        to_group_norm(model, cfg.MODEL.BACKBONE.GN_GROUPS)
    model.to(resolve_device(cfg.MODEL.DEVICE))
    if cfg.MODEL.CHANNELS_LAST:
        model.to(memory_format=torch.channels_last)
    return model


def check_soft_targets(model: nn.Module) -> None:
    """Refuse, as a config error, a model with a part that cannot train on soft targets.

    MixUp/CutMix targets are class distributions. A part that needs the one true class of
    each image says so with ``supports_soft_targets = False`` and may say why in
    ``soft_targets_refusal``; a part that never sees the targets (``takes_targets =
    False``: a frozen teacher) is not looked into.
    """
    refusals = list(_soft_target_refusals(model))
    if refusals:
        raise ConfigError(
            "INPUT.MIXUP_ALPHA / INPUT.CUTMIX_ALPHA train on mixed (soft) targets, which "
            f"{'; '.join(dict.fromkeys(refusals))} cannot take. Use a loss that takes them "
            "(CrossEntropyLoss, BalancedSoftmaxLoss, LogitAdjustedLoss, FocalLoss; for RIDE "
            "in MODEL.LOSS.RIDE.BASE_LOSS), or set both alphas to 0 for this stage."
        )


def _soft_target_refusals(module: nn.Module):
    if getattr(module, "takes_targets", True) is False:
        return
    if getattr(module, "supports_soft_targets", True) is False:
        why = getattr(module, "soft_targets_refusal", "")
        yield type(module).__name__ + (f" ({why})" if why else "")
    for child in module.children():
        yield from _soft_target_refusals(child)
