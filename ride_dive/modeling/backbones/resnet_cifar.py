"""CIFAR-style ResNets (He et al. 2016, section 4.2), as used by LDAM, BBN, RIDE and DiVE.

A 3x3 stem of 16 channels, three stages of BasicBlocks (16/32/64 channels, stride 2 at stages
2 and 3), global average pooling. Shortcuts are the parameter-free option A (stride-2
subsample + zero channel padding) of the reference LDAM/RIDE code: ResNet-32 with a 100-class
linear head then has 0.470 M parameters and ~0.069 GMACs at 32x32, the numbers the papers
report (1x1-conv projections would add 2.7 K parameters).
"""

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...config import configurable
from ..registry import BACKBONE_REGISTRY
from .base import Backbone, scaled_width
from .blocks import BasicBlock, conv3x3, make_stage

__all__ = ["CIFAR_STEM_WIDTH", "CIFAR_STAGE_WIDTHS", "CifarResNet", "ResNet32"]

CIFAR_STEM_WIDTH = 16
CIFAR_STAGE_WIDTHS = (16, 32, 64)


class CifarResNet(Backbone):
    """CIFAR ResNet of depth ``6 * blocks_per_stage + 2``.

    Modules are named as in the LDAM/RIDE code (``conv1``, ``bn1``, ``layer1``..``layer3``)
    so their checkpoints load by name. A multi-expert model reuses ``conv1``/``bn1``/
    ``layer1`` as its shared trunk and builds per-expert stages with ``make_stage``.

    Args:
        blocks_per_stage: BasicBlocks in each stage (5 for ResNet-32).
        stage_widths: output channels of the stages (before ``width_mult``).
        in_channels: input image channels.
        width_mult: multiplies the stem and stage widths.
        shortcut: ``"pad"`` (option A, the reference) or ``"conv"`` (1x1 projection).
        normalize_features: L2-normalise the pooled feature.
        freeze: freeze weights and BN statistics after initialisation.
    """

    conv_bn_pairs = (("conv1", "bn1"),)  # the stem (see modeling/fold_bn.py)

    # LDAM/RIDE initialise with kaiming_normal_ defaults (fan_in).
    kaiming_mode = "fan_in"

    def __init__(
        self,
        blocks_per_stage: int,
        stage_widths: Sequence[int] = CIFAR_STAGE_WIDTHS,
        in_channels: int = 3,
        width_mult: float = 1.0,
        shortcut: str = "pad",
        normalize_features: bool = False,
        freeze: bool = False,
    ):
        super().__init__(in_channels, normalize_features, freeze)
        stem = scaled_width(CIFAR_STEM_WIDTH, width_mult)
        self.conv1 = conv3x3(in_channels, stem)
        self.bn1 = nn.BatchNorm2d(stem)
        channels = stem
        self.num_stages = len(stage_widths)
        for i, width in enumerate(stage_widths):
            stage = make_stage(
                BasicBlock,
                channels,
                scaled_width(width, width_mult),
                blocks_per_stage,
                stride=1 if i == 0 else 2,
                shortcut=shortcut,
            )
            self.add_module(f"layer{i + 1}", stage)
            channels = stage.out_channels
        self.out_features = channels
        self._finish_init()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Stem only: conv -> BN -> ReLU."""
        return F.relu(self.bn1(self.conv1(x)), inplace=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x


@BACKBONE_REGISTRY.register()
class ResNet32(CifarResNet):
    """ResNet-32 for 32x32 images: 5 BasicBlocks per stage, 64-d feature at width 1.

    Args:
        in_channels: input image channels (``MODEL.BACKBONE.IN_CHANNELS``).
        width_mult: ``MODEL.BACKBONE.WIDTH_MULT``.
        normalize_features: ``MODEL.BACKBONE.NORMALIZE_FEATURES``.
        freeze: ``MODEL.BACKBONE.FREEZE``.
        shortcut: ``"pad"`` (default, option A of the reference code) or ``"conv"``.
    """

    @configurable
    def __init__(
        self,
        *,
        in_channels: int = 3,
        width_mult: float = 1.0,
        normalize_features: bool = False,
        freeze: bool = False,
        shortcut: str = "pad",
    ):
        super().__init__(
            blocks_per_stage=5,
            in_channels=in_channels,
            width_mult=width_mult,
            shortcut=shortcut,
            normalize_features=normalize_features,
            freeze=freeze,
        )

    @classmethod
    def from_config(cls, cfg):
        b = cfg.MODEL.BACKBONE
        return {
            "in_channels": b.IN_CHANNELS,
            "width_mult": b.WIDTH_MULT,
            "normalize_features": b.NORMALIZE_FEATURES,
            "freeze": b.FREEZE,
        }
