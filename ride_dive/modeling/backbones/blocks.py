"""Residual building blocks and a stage builder shared by every ResNet in ride_dive.

The parameter names follow torchvision (``conv1``/``bn1``/..., ``downsample``) and the
LDAM/RIDE CIFAR code (``shortcut``), so checkpoints of those projects map onto these modules
by name. Multi-expert models (RIDE) build their shared trunk and their per-expert stages from
the same pieces: ``make_stage(block, in_channels, channels, num_blocks, stride)``.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "PadShortcut",
    "Stage",
    "conv1x1",
    "conv3x3",
    "make_stage",
]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm always follows)."""
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False
    )


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias (a BatchNorm always follows)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Parameter-free "option A" shortcut of the CIFAR ResNets (He et al. 2016, LDAM, RIDE).

    Subsamples spatially by ``stride`` and zero-pads the extra channels, split as evenly as
    possible before and after the input channels.

    Args:
        in_channels: channels of the block input.
        out_channels: channels of the block output; must be >= ``in_channels``.
        stride: spatial subsampling factor.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"A zero-padding shortcut cannot reduce channels ({in_channels} -> "
                f"{out_channels}); use shortcut='conv'"
            )
        self.stride = stride
        self.pad_before = (out_channels - in_channels) // 2
        self.pad_after = out_channels - in_channels - self.pad_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Strided slicing keeps ceil(H / stride) rows, the same as a 3x3 conv with padding 1,
        # so odd input sizes still line up with the residual branch.
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34 and CIFAR ResNets).

    Args:
        in_channels: input channels.
        channels: output channels (``expansion`` is 1).
        stride: stride of the first convolution.
        shortcut: ``"pad"`` (parameter-free option A, used by the CIFAR ResNets) or
            ``"conv"`` (1x1 convolution + BN projection, option B) when the shape changes.
    """

    expansion = 1
    # Each convolution's BatchNorm (modeling/fold_bn.py folds them for a frozen teacher).
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("shortcut.0", "shortcut.1"))

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut: str = "pad"):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            if shortcut == "pad":
                self.shortcut = PadShortcut(in_channels, channels, stride)
            elif shortcut == "conv":
                self.shortcut = nn.Sequential(
                    conv1x1(in_channels, channels, stride), nn.BatchNorm2d(channels)
                )
            else:
                raise ValueError(f"shortcut must be 'pad' or 'conv', got '{shortcut}'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (grouped, strided) -> 1x1 bottleneck, as in torchvision ("ResNet v1.5").

    Args:
        in_channels: input channels.
        channels: "planes"; the output has ``channels * 4`` channels.
        stride: stride of the 3x3 convolution.
        groups: groups of the 3x3 convolution (32 for ResNeXt-50 32x4d).
        width_per_group: channels per group at 64 planes (4 for ResNeXt 32x4d, 64 for ResNet);
            the 3x3 width is ``int(channels * width_per_group / 64) * groups``.
    """

    expansion = 4
    conv_bn_pairs = (
        ("conv1", "bn1"),
        ("conv2", "bn2"),
        ("conv3", "bn3"),
        ("downsample.0", "downsample.1"),
    )

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        groups: int = 1,
        width_per_group: int = 64,
    ):
        super().__init__()
        width = int(channels * width_per_group / 64) * groups
        if width <= 0:
            raise ValueError(
                f"Bottleneck width is 0 for channels={channels}, groups={groups}, "
                f"width_per_group={width_per_group}; increase the width multiplier"
            )
        out_channels = channels * self.expansion
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity, inplace=True)


class Stage(nn.Sequential):
    """A sequence of residual blocks that knows its output width (``out_channels``)."""

    def __init__(self, *blocks: nn.Module, out_channels: int):
        super().__init__(*blocks)
        self.out_channels = out_channels


def make_stage(
    block: type,
    in_channels: int,
    channels: int,
    num_blocks: int,
    stride: int = 1,
    **block_kwargs,
) -> Stage:
    """Build one ResNet stage: the first block changes stride/width, the rest keep them.

    Args:
        block: ``BasicBlock`` or ``Bottleneck`` (any class with ``expansion`` and the
            ``(in_channels, channels, stride, **kwargs)`` constructor).
        in_channels: channels entering the stage.
        channels: the block's ``channels`` argument; the stage outputs
            ``channels * block.expansion`` channels.
        num_blocks: number of blocks (>= 1).
        stride: stride of the first block.
        **block_kwargs: passed to every block (``shortcut``, ``groups``, ``width_per_group``).

    Returns:
        A ``Stage`` (an ``nn.Sequential``) with the attribute ``out_channels``.
    """
    if num_blocks < 1:
        raise ValueError(f"A stage needs at least one block, got num_blocks={num_blocks}")
    if in_channels < 1 or channels < 1:
        raise ValueError(f"Stage widths must be >= 1, got in={in_channels}, out={channels}")
    out_channels = channels * block.expansion
    blocks = [block(in_channels, channels, stride, **block_kwargs)]
    blocks += [block(out_channels, channels, 1, **block_kwargs) for _ in range(num_blocks - 1)]
    return Stage(*blocks, out_channels=out_channels)
