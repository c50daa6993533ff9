"""Models: backbones, heads, losses and meta-architectures, with their registries.

Importing this package imports every module that registers something, so each registered
name is available to ``build_model`` and friends.
"""

from . import backbones, distill_loss, heads, losses, meta_arch, ride_loss  # noqa: F401
from .build import (
    build_backbone,
    build_head,
    build_loss,
    build_model,
    check_soft_targets,
    resolve_device,
)
from .complexity import count_macs, count_parameters
from .distill_loss import DiVELoss, distillation_kl, dive_target
from .heads import CosineHead, LinearHead, LWSHead, NCMHead, tau_normalized_weight
from .registry import BACKBONE_REGISTRY, HEAD_REGISTRY, LOSS_REGISTRY, META_ARCH_REGISTRY
from .ride_loss import RIDELoss, distribution_aware_temperatures, diversity_kl
from .router import ExpertRouter, experts_used, router_labels

__all__ = [
    "BACKBONE_REGISTRY",
    "HEAD_REGISTRY",
    "LOSS_REGISTRY",
    "META_ARCH_REGISTRY",
    "CosineHead",
    "DiVELoss",
    "ExpertRouter",
    "LWSHead",
    "LinearHead",
    "NCMHead",
    "RIDELoss",
    "build_backbone",
    "build_head",
    "build_loss",
    "build_model",
    "check_soft_targets",
    "count_macs",
    "count_parameters",
    "distillation_kl",
    "distribution_aware_temperatures",
    "dive_target",
    "diversity_kl",
    "experts_used",
    "resolve_device",
    "router_labels",
    "tau_normalized_weight",
]
