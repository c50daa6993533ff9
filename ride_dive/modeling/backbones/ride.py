"""RIDE backbones (docs/METHODS.md section 3): shared early stages, per-expert late stages.

- ``RIDEResNet32``: stem + stage 1 shared; each expert has its own stages 2-3, reduced to
  24/48 channels (32/64 is the full ResNet-32). MACs at 32x32 with 100-class cosine heads:
  E=3 ~0.100 G, E=4 ~0.126 G, E=6 ~0.177 G.
- ``RIDEResNet50`` / ``RIDEResNeXt50``: stem + stages 1-2 shared; each expert has its own
  stages 3-4 with 192/384 planes (feature dimension 1536) instead of 256/512.

Module names follow the reference code (``conv1``, ``bn1``, ``layer1``, ``layer2s.<e>``...)
so its checkpoints map onto these modules by name.
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...config import configurable
from ..registry import BACKBONE_REGISTRY
from .base import scaled_width
from .blocks import BasicBlock, Bottleneck, conv3x3, make_stage
from .multi_expert import MultiExpertBackbone
from .resnet import IMAGENET_STAGE_WIDTHS, IMAGENET_STEM_WIDTH
from .resnet_cifar import CIFAR_STAGE_WIDTHS, CIFAR_STEM_WIDTH

__all__ = ["RIDEResNet32", "RIDEResNet50", "RIDEResNeXt50"]


def _ride_kwargs(cfg) -> dict:
    b, r = cfg.MODEL.BACKBONE, cfg.MODEL.RIDE
    return {
        "num_experts": r.NUM_EXPERTS,
        "expert_widths": tuple(r.EXPERT_WIDTHS) or None,
        "in_channels": b.IN_CHANNELS,
        "width_mult": b.WIDTH_MULT,
        "normalize_features": b.NORMALIZE_FEATURES,
        "freeze": b.FREEZE,
        "batched": r.BATCHED_EXPERTS,
    }


@BACKBONE_REGISTRY.register()
class RIDEResNet32(MultiExpertBackbone):
    """RIDE ResNet-32: 5 BasicBlocks per stage; stages 2-3 belong to the experts.

    Args:
        num_experts: E (``MODEL.RIDE.NUM_EXPERTS``).
        expert_widths: channels of the expert stages 2 and 3 before ``width_mult``
            (``MODEL.RIDE.EXPERT_WIDTHS``); None = (24, 48).
        in_channels, width_mult, normalize_features, freeze: as for ``ResNet32``.
        batched: ``MODEL.RIDE.BATCHED_EXPERTS``.
        shortcut: ``"pad"`` (option A, the reference) or ``"conv"``.
    """

    conv_bn_pairs = (("conv1", "bn1"),)  # the stem (see modeling/fold_bn.py)

    kaiming_mode = "fan_in"  # as ResNet32 (LDAM/RIDE initialisation)
    default_expert_widths = (24, 48)

    @configurable
    def __init__(
        self,
        *,
        num_experts: int = 3,
        expert_widths: Optional[Sequence[int]] = None,
        in_channels: int = 3,
        width_mult: float = 1.0,
        normalize_features: bool = False,
        freeze: bool = False,
        batched: bool = True,
        shortcut: str = "pad",
    ):
        super().__init__(num_experts, in_channels, normalize_features, freeze, batched)
        stem = scaled_width(CIFAR_STEM_WIDTH, width_mult)
        self.conv1 = conv3x3(in_channels, stem)
        self.bn1 = nn.BatchNorm2d(stem)
        self.layer1 = make_stage(
            BasicBlock,
            stem,
            scaled_width(CIFAR_STAGE_WIDTHS[0], width_mult),
            5,
            1,
            shortcut=shortcut,
        )
        widths = expert_widths or self.default_expert_widths
        self._add_expert_stages(
            ("layer2", "layer3"),
            BasicBlock,
            self.layer1.out_channels,
            [scaled_width(w, width_mult) for w in widths],
            num_blocks=(5, 5),
            strides=(2, 2),
            shortcut=shortcut,
        )
        self._finish_init()

    @classmethod
    def from_config(cls, cfg):
        return _ride_kwargs(cfg)

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(F.relu(self.bn1(self.conv1(x)), inplace=True))


class _RIDEBottleneckResNet(MultiExpertBackbone):
    """RIDE ResNet-50-style network: stages 1-2 shared, experts own stages 3-4.

    ``groups``/``width_per_group`` left as None take the class defaults.
    """

    conv_bn_pairs = (("conv1", "bn1"),)  # the stem (see modeling/fold_bn.py)

    default_groups = 1
    default_width_per_group = 64
    default_expert_widths = (192, 384)

    @configurable
    def __init__(
        self,
        *,
        num_experts: int = 3,
        expert_widths: Optional[Sequence[int]] = None,
        in_channels: int = 3,
        width_mult: float = 1.0,
        groups: Optional[int] = None,
        width_per_group: Optional[int] = None,
        normalize_features: bool = False,
        freeze: bool = False,
        batched: bool = True,
    ):
        super().__init__(num_experts, in_channels, normalize_features, freeze, batched)
        block_kwargs = {
            "groups": self.default_groups if groups is None else groups,
            "width_per_group": (
                self.default_width_per_group if width_per_group is None else width_per_group
            ),
        }
        stem = scaled_width(IMAGENET_STEM_WIDTH, width_mult)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes1, planes2 = (scaled_width(p, width_mult) for p in IMAGENET_STAGE_WIDTHS[:2])
        self.layer1 = make_stage(Bottleneck, stem, planes1, 3, 1, **block_kwargs)
        self.layer2 = make_stage(
            Bottleneck, self.layer1.out_channels, planes2, 4, 2, **block_kwargs
        )
        widths = expert_widths or self.default_expert_widths
        self._add_expert_stages(
            ("layer3", "layer4"),
            Bottleneck,
            self.layer2.out_channels,
            [scaled_width(w, width_mult) for w in widths],
            num_blocks=(6, 3),
            strides=(2, 2),
            **block_kwargs,
        )
        self._finish_init()

    @classmethod
    def from_config(cls, cfg):
        r = cfg.MODEL.RESNET
        return dict(_ride_kwargs(cfg), groups=r.GROUPS, width_per_group=r.WIDTH_PER_GROUP)

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        return self.layer2(self.layer1(x))


@BACKBONE_REGISTRY.register()
class RIDEResNet50(_RIDEBottleneckResNet):
    """RIDE ResNet-50 (feature dimension 1536 with the default expert widths).

    Args: see ``RIDEResNeXt50``; ``groups``/``width_per_group`` default to 1 and 64.
    """


@BACKBONE_REGISTRY.register()
class RIDEResNeXt50(_RIDEBottleneckResNet):
    """RIDE ResNeXt-50 32x4d (feature dimension 1536 with the default expert widths).

    ``MODEL.RESNET.GROUPS/WIDTH_PER_GROUP`` at their ResNet defaults (1 and 64) mean "not
    set" here and give 32x4d, as for ``ResNeXt50``.

    Args:
        num_experts: E (``MODEL.RIDE.NUM_EXPERTS``).
        expert_widths: planes of the expert stages 3 and 4 before ``width_mult``; None =
            (192, 384).
        in_channels, width_mult, groups, width_per_group, normalize_features, freeze: as
            for ``ResNeXt50``.
        batched: ``MODEL.RIDE.BATCHED_EXPERTS``.
    """

    default_groups = 32
    default_width_per_group = 4

    @classmethod
    def from_config(cls, cfg):
        r = cfg.MODEL.RESNET
        if (r.GROUPS, r.WIDTH_PER_GROUP) == (1, 64):
            return dict(_ride_kwargs(cfg), groups=None, width_per_group=None)
        return dict(_ride_kwargs(cfg), groups=r.GROUPS, width_per_group=r.WIDTH_PER_GROUP)
