"""ImageNet-style bottleneck ResNets and ResNeXts (ResNet-50/152, ResNeXt-50 32x4d).

Architecturally identical to torchvision's ``resnet50``/``resnext50_32x4d``/``resnet152``
without the ``fc`` layer (the stride sits on the 3x3 convolution, "v1.5"), with the same
module names, so torchvision and Decoupling checkpoints load by name.
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...config import configurable
from ..registry import BACKBONE_REGISTRY
from .base import Backbone, scaled_width
from .blocks import Bottleneck, make_stage

__all__ = ["IMAGENET_STAGE_WIDTHS", "BottleneckResNet", "ResNet50", "ResNeXt50", "ResNet152"]

IMAGENET_STEM_WIDTH = 64
# "planes" of the four stages; a stage outputs 4x as many channels.
IMAGENET_STAGE_WIDTHS = (64, 128, 256, 512)


class BottleneckResNet(Backbone):
    """7x7 stem + max-pool, four Bottleneck stages (stride 1/2/2/2), average pooling.

    A multi-expert model reuses ``conv1``/``bn1``/``maxpool``/``layer1``/``layer2`` as its
    shared trunk and builds per-expert stages 3-4 with ``make_stage``.

    Args:
        stage_blocks: blocks per stage, e.g. ``(3, 4, 6, 3)`` for 50 layers.
        in_channels: input image channels.
        width_mult: multiplies the stem width and every stage's planes.
        groups: groups of the 3x3 convolutions.
        width_per_group: 3x3 channels per group at 64 planes.
        normalize_features: L2-normalise the pooled feature.
        freeze: freeze weights and BN statistics after initialisation.
    """

    conv_bn_pairs = (("conv1", "bn1"),)  # the stem (see modeling/fold_bn.py)

    def __init__(
        self,
        stage_blocks: Sequence[int],
        in_channels: int = 3,
        width_mult: float = 1.0,
        groups: int = 1,
        width_per_group: int = 64,
        normalize_features: bool = False,
        freeze: bool = False,
    ):
        super().__init__(in_channels, normalize_features, freeze)
        if groups < 1 or width_per_group < 1:
            raise ValueError(
                f"MODEL.RESNET.GROUPS and WIDTH_PER_GROUP must be >= 1, got {groups} and "
                f"{width_per_group}"
            )
        if len(stage_blocks) != len(IMAGENET_STAGE_WIDTHS):
            raise ValueError(f"Expected 4 stage depths, got {tuple(stage_blocks)}")
        stem = scaled_width(IMAGENET_STEM_WIDTH, width_mult)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = stem
        for i, (planes, blocks) in enumerate(zip(IMAGENET_STAGE_WIDTHS, stage_blocks)):
            stage = make_stage(
                Bottleneck,
                channels,
                scaled_width(planes, width_mult),
                blocks,
                stride=1 if i == 0 else 2,
                groups=groups,
                width_per_group=width_per_group,
            )
            self.add_module(f"layer{i + 1}", stage)
            channels = stage.out_channels
        self.out_features = channels
        self._finish_init()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Stem only: conv -> BN -> ReLU -> max-pool (output stride 4)."""
        return self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _common_kwargs(cfg) -> dict:
    b = cfg.MODEL.BACKBONE
    return {
        "in_channels": b.IN_CHANNELS,
        "width_mult": b.WIDTH_MULT,
        "normalize_features": b.NORMALIZE_FEATURES,
        "freeze": b.FREEZE,
    }


class _ConfiguredResNet(BottleneckResNet):
    """A fixed-depth ResNet whose keyword arguments come from ``MODEL.BACKBONE/RESNET``.

    ``groups``/``width_per_group`` left as ``None`` take the class defaults.
    """

    stage_blocks: Sequence[int] = ()
    default_groups = 1
    default_width_per_group = 64

    @configurable
    def __init__(
        self,
        *,
        in_channels: int = 3,
        width_mult: float = 1.0,
        groups: Optional[int] = None,
        width_per_group: Optional[int] = None,
        normalize_features: bool = False,
        freeze: bool = False,
    ):
        super().__init__(
            self.stage_blocks,
            in_channels=in_channels,
            width_mult=width_mult,
            groups=self.default_groups if groups is None else groups,
            width_per_group=(
                self.default_width_per_group if width_per_group is None else width_per_group
            ),
            normalize_features=normalize_features,
            freeze=freeze,
        )

    @classmethod
    def from_config(cls, cfg):
        r = cfg.MODEL.RESNET
        return dict(_common_kwargs(cfg), groups=r.GROUPS, width_per_group=r.WIDTH_PER_GROUP)


@BACKBONE_REGISTRY.register()
class ResNet50(_ConfiguredResNet):
    """ResNet-50 (2048-d feature); ``MODEL.RESNET.GROUPS/WIDTH_PER_GROUP`` are honoured."""

    stage_blocks = (3, 4, 6, 3)


@BACKBONE_REGISTRY.register()
class ResNet152(_ConfiguredResNet):
    """ResNet-152 (2048-d feature); ``MODEL.RESNET.GROUPS/WIDTH_PER_GROUP`` are honoured."""

    stage_blocks = (3, 8, 36, 3)


@BACKBONE_REGISTRY.register()
class ResNeXt50(_ConfiguredResNet):
    """ResNeXt-50 32x4d (2048-d feature).

    ``MODEL.RESNET.GROUPS/WIDTH_PER_GROUP`` at their ResNet defaults (1 and 64) mean "not
    set" here and give 32x4d; any other pair (e.g. 64 and 4) is honoured. Built without a
    cfg, ``groups``/``width_per_group`` default to 32 and 4.
    """

    default_groups = 32
    default_width_per_group = 4
    stage_blocks = (3, 4, 6, 3)

    @classmethod
    def from_config(cls, cfg):
        r = cfg.MODEL.RESNET
        if (r.GROUPS, r.WIDTH_PER_GROUP) == (1, 64):
            return dict(_common_kwargs(cfg), groups=None, width_per_group=None)
        return dict(_common_kwargs(cfg), groups=r.GROUPS, width_per_group=r.WIDTH_PER_GROUP)
