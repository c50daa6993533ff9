"""Swap a built model's BatchNorm layers for SyncBatchNorm or GroupNorm (MODEL.BACKBONE.NORM).

Backbones are written with ``nn.BatchNorm2d``; the other normalisations are conversions of
the built model, so every architecture supports them without a norm argument threaded
through its constructors. Parameter names stay those of the BatchNorm layers (``bn1.weight``
...), so GN and BN checkpoints differ only by the BN running statistics.
"""

import logging
import math

from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["to_group_norm", "to_sync_batch_norm"]


def _group_norm_like(bn: nn.BatchNorm2d, max_groups: int) -> nn.GroupNorm:
    channels = bn.num_features
    gn = nn.GroupNorm(math.gcd(max_groups, channels), channels, eps=bn.eps, affine=bn.affine)
    if bn.affine:
        gn.to(bn.weight.device)
    if bn.affine:
        gn.weight.data.copy_(bn.weight.data)
        gn.bias.data.copy_(bn.bias.data)
        # A frozen backbone stays frozen after the swap.
        gn.weight.requires_grad_(bn.weight.requires_grad)
        gn.bias.requires_grad_(bn.bias.requires_grad)
    gn.train(bn.training)
    return gn


def to_group_norm(module: nn.Module, max_groups: int = 32) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` in ``module`` by a GroupNorm (in place; returned).

    Each layer gets ``gcd(max_groups, channels)`` groups, its affine parameters and their
    ``requires_grad``. GroupNorm normalises each image on its own, so training gives the
    same result however a batch is split across processes.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            setattr(module, name, _group_norm_like(child, max_groups))
        else:
            to_group_norm(child, max_groups)
    return module


def to_sync_batch_norm(module: nn.Module) -> nn.Module:
    """Convert BatchNorm layers to ``nn.SyncBatchNorm`` (statistics over all processes).

    Multi-expert backbones then run their experts one after the other: the batched-expert
    path computes BatchNorm statistics itself and could not synchronise them.
    """
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for sub in converted.modules():
        if getattr(sub, "batched", False):
            sub.batched = False
            logger.info("SyncBN: %s runs its experts one by one", type(sub).__name__)
    return converted
