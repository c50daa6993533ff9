"""Models: backbones, heads, losses and meta-architectures, with their registries.

Importing this package imports every module that registers something, so each registered
name is available to ``build_model`` and friends.
"""
from . import backbones, heads, losses, meta_arch  # noqa: F401  (registration side effects)
from .build import build_backbone, build_head, build_loss, build_model, resolve_device
from .complexity import count_macs, count_parameters
from .heads import CosineHead, LinearHead, LWSHead, tau_normalized_weight
from .registry import BACKBONE_REGISTRY, HEAD_REGISTRY, LOSS_REGISTRY, META_ARCH_REGISTRY

__all__ = [
    "BACKBONE_REGISTRY",
    "HEAD_REGISTRY",
    "LOSS_REGISTRY",
    "META_ARCH_REGISTRY",
    "CosineHead",
    "LWSHead",
    "LinearHead",
    "build_backbone",
    "build_head",
    "build_loss",
    "build_model",
    "count_macs",
    "count_parameters",
    "resolve_device",
    "tau_normalized_weight",
]
