"""Run E structurally identical expert branches as one grouped network.

Each expert keeps its own modules (``make_stage`` stages of ``BasicBlock``/``Bottleneck``),
so its parameters, names, initialisation and single-expert execution stay those of an
ordinary ResNet stage. For a joint forward the experts' activations are stacked along the
channel axis, ``(N, E * C, H, W)``, and every layer runs once for all experts:

- a convolution concatenates the experts' weights and uses ``groups * E`` groups (on the
  shared trunk output, a groups-1 convolution instead concatenates along the output
  channels, which avoids copying the input E times);
- a BatchNorm concatenates the experts' affine parameters and running statistics (batch
  statistics are per channel, hence per expert) and writes the updated running statistics
  back to each expert;
- a GroupNorm (``MODEL.BACKBONE.NORM: GN``) uses E times the groups: groups are contiguous
  channel ranges, so each expert's groups stay its own;
- a BatchNorm folded into its convolution (``nn.Identity``, a frozen teacher's) is skipped.

Gradients reach each expert's own parameters through the concatenations. The results equal
running the experts one after the other, up to floating-point summation order.
"""

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BasicBlock, Bottleneck, PadShortcut

__all__ = ["batched_experts_forward"]


def _conv(convs: Sequence[nn.Conv2d], x: torch.Tensor, shared: bool) -> torch.Tensor:
    first = convs[0]
    weight = torch.cat([c.weight for c in convs])
    bias = None if first.bias is None else torch.cat([c.bias for c in convs])
    groups = first.groups
    if shared and groups == 1:
        return F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation, 1)
    if shared:
        x = x.repeat(1, len(convs), 1, 1)
    return F.conv2d(
        x, weight, bias, first.stride, first.padding, first.dilation, groups * len(convs)
    )


def _cat_or_none(tensors: List) -> torch.Tensor:
    return None if tensors[0] is None else torch.cat(tensors)


def _norm(bns: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    first = bns[0]
    if all(type(b) is nn.Identity for b in bns):  # folded into the convolution (fold_bn.py)
        return x
    if type(first) is nn.GroupNorm:
        weight = _cat_or_none([b.weight for b in bns])
        bias = _cat_or_none([b.bias for b in bns])
        return F.group_norm(x, first.num_groups * len(bns), weight, bias, first.eps)
    if type(first) is not nn.BatchNorm2d:  # SyncBatchNorm: statistics must cross processes
        raise TypeError(f"Cannot batch expert normalisation layers of type {type(first).__name__}")
    if any(b.training != first.training for b in bns):
        raise RuntimeError("Batched experts need every expert's BatchNorm in the same mode")
    update = first.training and first.track_running_stats
    momentum = first.momentum
    if update:
        with torch.no_grad():
            for b in bns:
                b.num_batches_tracked.add_(1)
        if momentum is None:  # cumulative average, as nn.BatchNorm2d does
            momentum = 1.0 / float(first.num_batches_tracked)
    mean = _cat_or_none([b.running_mean for b in bns])
    var = _cat_or_none([b.running_var for b in bns])
    use_batch_stats = first.training or mean is None
    out = F.batch_norm(
        x,
        mean,
        var,
        _cat_or_none([b.weight for b in bns]),
        _cat_or_none([b.bias for b in bns]),
        use_batch_stats,
        0.0 if momentum is None else momentum,
        first.eps,
    )
    if update:  # F.batch_norm updated the concatenated copies in place
        with torch.no_grad():
            for b, m, v in zip(bns, mean.chunk(len(bns)), var.chunk(len(bns))):
                b.running_mean.copy_(m)
                b.running_var.copy_(v)
    return out


def _per_expert(fn, x: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Apply a parameter-free per-expert op by folding the experts into the batch axis."""
    n, c, h, w = x.shape
    out = fn(x.reshape(n * num_experts, c // num_experts, h, w))
    return out.reshape(n, -1, out.shape[-2], out.shape[-1])


def _shortcut(blocks: Sequence[nn.Module], name: str, x: torch.Tensor, shared: bool):
    first = getattr(blocks[0], name)
    num = len(blocks)
    if first is None or isinstance(first, nn.Identity):
        return x.repeat(1, num, 1, 1) if shared else x
    if isinstance(first, PadShortcut):
        return first(x).repeat(1, num, 1, 1) if shared else _per_expert(first, x, num)
    if isinstance(first, nn.Sequential) and len(first) == 2:  # conv1x1 + BN projection
        out = _conv([getattr(b, name)[0] for b in blocks], x, shared)
        return _norm([getattr(b, name)[1] for b in blocks], out)
    raise TypeError(f"Cannot batch the shortcut {type(first).__name__}")


def _basic_block(blocks: Sequence[BasicBlock], x: torch.Tensor, shared: bool) -> torch.Tensor:
    out = _conv([b.conv1 for b in blocks], x, shared)
    out = F.relu(_norm([b.bn1 for b in blocks], out), inplace=True)
    out = _norm([b.bn2 for b in blocks], _conv([b.conv2 for b in blocks], out, False))
    return F.relu(out + _shortcut(blocks, "shortcut", x, shared), inplace=True)


def _bottleneck(blocks: Sequence[Bottleneck], x: torch.Tensor, shared: bool) -> torch.Tensor:
    out = _conv([b.conv1 for b in blocks], x, shared)
    out = F.relu(_norm([b.bn1 for b in blocks], out), inplace=True)
    out = F.relu(
        _norm([b.bn2 for b in blocks], _conv([b.conv2 for b in blocks], out, False)),
        inplace=True,
    )
    out = _norm([b.bn3 for b in blocks], _conv([b.conv3 for b in blocks], out, False))
    return F.relu(out + _shortcut(blocks, "downsample", x, shared), inplace=True)


_BLOCK_FORWARD = {BasicBlock: _basic_block, Bottleneck: _bottleneck}


def batched_experts_forward(
    expert_stages: Sequence[Sequence[nn.Sequential]], x: torch.Tensor
) -> torch.Tensor:
    """Run every expert's stages on the shared input ``x`` at once.

    Args:
        expert_stages: one entry per expert, each the expert's stages in order; all experts
            must have the same structure (block types, widths, strides).
        x: ``(N, C, H, W)`` shared trunk output.

    Returns:
        ``(N, E * C_out, h, w)``: expert e's feature map is channels ``e*C_out:(e+1)*C_out``.
    """
    shared = True
    for stages in zip(*expert_stages):
        for blocks in zip(*stages):
            forward = _BLOCK_FORWARD.get(type(blocks[0]))
            if forward is None or any(type(b) is not type(blocks[0]) for b in blocks):
                raise TypeError(f"Cannot batch expert blocks of type {type(blocks[0]).__name__}")
            x = forward(blocks, x, shared)
            shared = False
    return x
