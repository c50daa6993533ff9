"""RIDE experts on a library trunk (docs/METHODS.md section 3 on a pretrained network).

The library's model is built and its pretrained weights loaded first; then its final
``MODEL.RIDE.EXPERT_STAGES`` stages are split off, and every expert gets its own deep copy
of them, so all experts start from the same pretrained weights (RIDE's diversity loss and
their different heads pull them apart). Four layouts:

* ResNet / ResNeXt (timm's and torchvision's share the names ``conv1 bn1 maxpool
  layer1..layer4``): the stem and the first ``4 - k`` stages are shared; each expert owns
  ``layer{5-k}..layer4`` (RIDE's own split is k = 2), kept in ``layer3s``/``layer4s`` as in
  the from-scratch RIDE networks.
* timm vision transformers (``blocks``): patch embedding, position embedding and the first
  ``depth - k`` blocks are shared; each expert owns the last k blocks and the final norm.
* timm stem / stages / head networks (ConvNeXt...): stem and the first stages shared; each
  expert owns the last k stages, ``norm_pre`` and the pooling head.
* torchvision features / avgpool / classifier networks (ConvNeXt, EfficientNet,
  MobileNet...): each expert owns the last k entries of ``features`` (for ConvNeXt a
  down-sampling layer and a stage are two entries) and the pooling and classifier norm.

In all but the ResNet layout the truncated library model is kept as ``lib`` (the shared
part) and each expert's parts live in ``experts_own.<e>``.

Routers and early exit only use ``forward_trunk``/``forward_experts``, so they work as with
the from-scratch RIDE backbones.
"""

import copy
from collections import OrderedDict
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError, configurable
from ..registry import BACKBONE_REGISTRY
from .library_trunk import (
    BuiltTrunk,
    library_trunk_kwargs,
    load_pretrained_trunk,
    top_level_layer_ids,
)
from .multi_expert import MultiExpertBackbone
from .timm_backbone import create_timm_trunk, timm_layer_ids
from .torchvision_backbone import create_torchvision_trunk

__all__ = ["RIDETimmBackbone", "RIDETorchvisionBackbone"]

_RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


def _is_resnet(model: nn.Module) -> bool:
    return all(hasattr(model, n) for n in ("conv1", "bn1", "maxpool", *_RESNET_STAGES))


def _is_vit(model: nn.Module) -> bool:
    return all(hasattr(model, n) for n in ("patch_embed", "_pos_embed", "blocks", "norm"))


def _is_timm_staged(model: nn.Module) -> bool:
    """timm's stem / stages / norm_pre / head networks (ConvNeXt and the like)."""
    return all(hasattr(model, n) for n in ("stem", "stages", "norm_pre", "head"))


def _is_features_net(model: nn.Module) -> bool:
    """torchvision's features / avgpool / classifier networks (ConvNeXt, EfficientNet...)."""
    return all(
        isinstance(getattr(model, n, None), nn.Module)
        for n in ("features", "avgpool", "classifier")
    )


class _LibraryRIDE(MultiExpertBackbone):
    """A library trunk split into a shared part and E copies of its last k stages/blocks.

    Subclasses set ``library`` (its name, for messages), ``create_trunk`` and
    ``library_layer_ids``, as for ``LibraryTrunkBackbone``.
    """

    library = ""
    create_trunk: Callable[..., BuiltTrunk]
    library_layer_ids: Callable[..., Dict[str, int]] = staticmethod(top_level_layer_ids)

    @configurable
    def __init__(
        self,
        *,
        arch: str,
        num_experts: int = 3,
        expert_stages: int = 2,
        in_channels: int = 3,
        pretrained: str = "",
        pretrained_sha256: str = "",
        img_size: int = 0,
        drop_path_rate: float = 0.0,
        normalize_features: bool = False,
        freeze: bool = False,
    ):
        # Per-expert copies are library modules, not our Stages: they run one after the other.
        super().__init__(num_experts, in_channels, normalize_features, freeze, batched=False)
        trunk = type(self).create_trunk(arch, in_channels, img_size, drop_path_rate)
        model, self._feature_dim, self.input_spec = trunk.model, trunk.dim, trunk.input_spec
        load_pretrained_trunk(model, pretrained, pretrained_sha256, trunk.classifier)
        self.arch = arch
        self._layer_ids = type(self).library_layer_ids(model)
        if _is_resnet(model):
            self._split_resnet(model, expert_stages)
        elif _is_vit(model):
            self._split_vit(model, expert_stages)
        elif _is_timm_staged(model):
            self._split_timm_stages(model, expert_stages)
        elif _is_features_net(model):
            self._split_features(model, expert_stages)
        else:
            raise ConfigError(
                f"{type(self).__name__}: {self.library}'s {arch} has none of the layouts RIDE "
                "experts are split off (ResNet conv1/layer1..4, timm vision transformers' "
                "blocks, timm stem/stages/head networks such as ConvNeXt, torchvision "
                "features/avgpool/classifier networks such as ConvNeXt or EfficientNet). "
                f"Use it single-head ({'Timm' if self.library == 'timm' else 'Torchvision'}"
                "Backbone) instead."
            )
        self._finish_init()

    # --- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg):
        return dict(
            library_trunk_kwargs(cfg),
            num_experts=cfg.MODEL.RIDE.NUM_EXPERTS,
            expert_stages=cfg.MODEL.RIDE.EXPERT_STAGES,
        )

    def _split_resnet(self, model: nn.Module, k: int) -> None:
        if not 1 <= k <= 3:
            raise ConfigError(f"MODEL.RIDE.EXPERT_STAGES must be 1..3 for a ResNet, got {k}")
        self.family = "resnet"
        self.conv1, self.bn1, self.maxpool = model.conv1, model.bn1, model.maxpool
        self.act = getattr(model, "act1", None) or getattr(model, "relu", None) or nn.ReLU()
        shared, own = _RESNET_STAGES[: 4 - k], _RESNET_STAGES[4 - k :]
        for name in shared:
            self.add_module(name, getattr(model, name))
        for name in own:
            stage = getattr(model, name)
            self.add_module(
                f"{name}s", nn.ModuleList(copy.deepcopy(stage) for _ in range(self.num_experts))
            )
        self.shared_stage_names = shared
        self.expert_stage_names = tuple(f"{n}s" for n in own)
        self.out_features = self._feature_dim

    def _split_vit(self, model: nn.Module, k: int) -> None:
        depth = _check_depth(len(model.blocks), k, self.arch, "blocks")
        blocks = list(model.blocks)
        model.blocks = nn.Sequential(*blocks[: depth - k])  # the shared blocks
        own = [(f"blocks.{i}", blocks[i]) for i in range(depth - k, depth)]
        own.append(("norm", model.norm))
        model.norm = nn.Identity()
        self._own_copies("vit", model, own)

    def _split_timm_stages(self, model: nn.Module, k: int) -> None:
        depth = _check_depth(len(model.stages), k, self.arch, "stages")
        stages = list(model.stages)
        model.stages = nn.Sequential(*stages[: depth - k])
        own = [(f"stages.{i}", stages[i]) for i in range(depth - k, depth)]
        # norm_pre and the pooling head (its classifier is the identity: num_classes=0).
        own += [("norm_pre", model.norm_pre), ("head", model.head)]
        model.norm_pre, model.head = nn.Identity(), nn.Identity()
        self._own_copies("stages", model, own)

    def _split_features(self, model: nn.Module, k: int) -> None:
        depth = _check_depth(len(model.features), k, self.arch, "features")
        features = list(model.features)
        model.features = nn.Sequential(*features[: depth - k])
        own = [(f"features.{i}", features[i]) for i in range(depth - k, depth)]
        own.append(("avgpool", model.avgpool))
        if not any(isinstance(m, nn.Flatten) for m in model.classifier.modules()):
            own.append(("", nn.Flatten(1)))  # what the model's forward does before it
        own.append(("classifier", model.classifier))
        model.avgpool, model.classifier = nn.Identity(), nn.Identity()
        self._own_copies("features", model, own)

    def _own_copies(self, family: str, model: nn.Module, own) -> None:
        """Keep the truncated ``model`` as the shared part (``lib``) and give every expert
        a copy of the ``own`` (library name, module) parts, run in that order."""
        self.family = family
        self.lib = model
        self._own_prefixes = [name for name, _ in own]
        parts = OrderedDict((f"m{i}", module) for i, (_, module) in enumerate(own))
        template = nn.Sequential(parts)
        self.experts_own = nn.ModuleList(copy.deepcopy(template) for _ in range(self.num_experts))
        self.expert_stage_names = ("experts_own",)
        self.out_features = self._feature_dim

    def init_weights(self) -> None:
        """Nothing: the library initialised the trunk and the pretrained weights are loaded."""

    # --- running --------------------------------------------------------------------------
    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        m = getattr(self, "lib", None)
        if self.family == "vit":
            return m.blocks(m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(x)))))
        if self.family == "stages":
            return m.stages(m.stem(x))
        if self.family == "features":
            return m.features(x)
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        for name in self.shared_stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_experts(
        self, shared: torch.Tensor, start: int = 0, stop: Optional[int] = None
    ) -> torch.Tensor:
        if self.family == "resnet":
            return super().forward_experts(shared, start, stop)
        stop = self.num_experts if stop is None else stop
        if not 0 <= start < stop <= self.num_experts:
            raise ValueError(f"Expert range [{start}, {stop}) is outside [0, {self.num_experts})")
        outs = [self.experts_own[e](shared) for e in range(start, stop)]
        if self.family == "vit":  # tokens, pooled as the transformer pools them
            outs = [self.lib.forward_head(x, pre_logits=True) for x in outs]
        pooled = torch.stack(outs)
        return F.normalize(pooled, dim=2) if self.normalize_features else pooled

    def layer_ids(self) -> Dict[str, int]:
        """Parameter name -> depth rank of the library parameter it is (or is a copy of)."""
        ids, top = {}, max(self._layer_ids.values(), default=0)
        for name, _ in self.named_parameters():
            ids[name] = self._layer_ids.get(_library_name(name, self), top)
        return ids


def _check_depth(depth: int, k: int, arch: str, what: str) -> int:
    if not 1 <= k < depth:
        raise ConfigError(
            f"MODEL.RIDE.EXPERT_STAGES must be 1..{depth - 1} for {arch} (its {depth} {what}, "
            f"one at least shared), got {k}"
        )
    return depth


def _library_name(name: str, backbone: "_LibraryRIDE") -> str:
    """Our parameter name -> the library model's: ``layer4s.2.0.conv1.weight`` ->
    ``layer4.0.conv1.weight``, ``lib.blocks.0...`` -> ``blocks.0...``, and an expert's
    copy ``experts_own.1.m0.attn...`` -> the library part it copies (``blocks.4.attn...``)."""
    parts = name.split(".")
    if parts[0].endswith("s") and parts[0][:-1] in _RESNET_STAGES:
        return ".".join([parts[0][:-1]] + parts[2:])
    if parts[0] == "lib":
        return ".".join(parts[1:])
    if parts[0] == "experts_own":
        prefix = backbone._own_prefixes[int(parts[2][1:])]
        return ".".join([prefix] + parts[3:])
    return name


@BACKBONE_REGISTRY.register()
class RIDETimmBackbone(_LibraryRIDE):
    """RIDE experts on a timm ResNet/ResNeXt, vision transformer or ConvNeXt-style network
    (see the module docstring).

    Args: those of ``TimmBackbone``, plus ``num_experts`` (``MODEL.RIDE.NUM_EXPERTS``) and
    ``expert_stages`` (``MODEL.RIDE.EXPERT_STAGES``: the final stages or blocks each expert
    owns).
    """

    library = "timm"
    create_trunk = staticmethod(create_timm_trunk)
    library_layer_ids = staticmethod(timm_layer_ids)


@BACKBONE_REGISTRY.register()
class RIDETorchvisionBackbone(_LibraryRIDE):
    """RIDE experts on a torchvision ResNet/ResNeXt, ConvNeXt, EfficientNet or MobileNet.

    Args: those of ``TorchvisionBackbone``, plus ``num_experts`` and ``expert_stages`` as for
    ``RIDETimmBackbone``.
    """

    library = "torchvision"
    create_trunk = staticmethod(create_torchvision_trunk)
