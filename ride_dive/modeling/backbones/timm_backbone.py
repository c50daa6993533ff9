"""``TimmBackbone``: any ``timm.create_model`` architecture as a single-head trunk.

timm is an optional dependency (``pip install 'ride_dive[timm]'``); naming a timm backbone
without it is a config error that says so.
"""

import difflib
from typing import Dict

import torch
import torch.nn.functional as F

from ...config import ConfigError, configurable
from ..registry import BACKBONE_REGISTRY
from .base import Backbone
from .library_trunk import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    library_trunk_kwargs,
    load_pretrained_trunk,
)

__all__ = ["TimmBackbone", "create_timm_trunk", "require_timm", "timm_layer_ids"]


def require_timm():
    """The ``timm`` module, or a ConfigError naming the extra that installs it."""
    try:
        import timm
    except ImportError as e:
        raise ConfigError(
            "This MODEL.BACKBONE.NAME builds a timm model, and timm is not installed: "
            "pip install 'ride_dive[timm]' (or pip install timm)."
        ) from e
    return timm


def create_timm_trunk(arch: str, in_channels: int, img_size: int, drop_path_rate: float):
    """``timm.create_model(arch)`` without its classifier (``num_classes=0``), random weights.

    Raises:
        ConfigError: timm missing, or ``arch`` not a timm model (with the closest names).
    """
    timm = require_timm()
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f" Closest timm names: {', '.join(close)}." if close else ""
        raise ConfigError(
            f"MODEL.BACKBONE.ARCH='{arch}' is not a timm model.{hint} "
            "timm.list_models('<pattern>') lists them."
        )
    kwargs = {"num_classes": 0, "in_chans": in_channels}
    if img_size > 0:
        kwargs["img_size"] = img_size
    if drop_path_rate > 0:
        kwargs["drop_path_rate"] = drop_path_rate
    try:
        return timm.create_model(arch, pretrained=False, **kwargs)
    except TypeError as e:  # e.g. img_size given to a convolutional network
        raise ConfigError(
            f"timm's {arch} does not take these arguments ({e}); MODEL.BACKBONE.IMG_SIZE is for "
            "transformers (leave it 0 for convolutional networks)."
        ) from e


def timm_input_spec(model, img_size: int) -> InputSpec:
    """Input size (``img_size`` when set) and normalisation of the model's pretrained config."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = img_size or int(cfg.get("input_size", (3, 224, 224))[-1])
    return InputSpec(
        size, tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
    )


def timm_layer_ids(model, prefix: str = "") -> Dict[str, int]:
    """Parameter name -> depth rank from timm's own ``group_matcher`` (what timm's layer
    decay uses: for a ViT the embeddings are 0, block i is i + 1, the final norm last)."""
    from timm.models import group_parameters

    groups = group_parameters(model, model.group_matcher(coarse=False), reverse=False)
    return {prefix + name: rank for rank, names in enumerate(groups.values()) for name in names}


@BACKBONE_REGISTRY.register()
class TimmBackbone(Backbone):
    """A timm model as trunk: its pooled pre-logits features ``(N, num_features)``.

    Args:
        arch: the timm model name (``MODEL.BACKBONE.ARCH``), e.g. ``vit_base_patch16_224``.
        in_channels: input channels (timm adapts pretrained first-layer weights itself only
            when it downloads them; a local file must match).
        pretrained: ``MODEL.BACKBONE.PRETRAINED`` (a local file, ``timm:<name>``, or "").
        pretrained_sha256: the expected sha256 of the local file, or "".
        img_size: input side for transformers (0 = the architecture's default).
        drop_path_rate: stochastic depth (0 = off).
        normalize_features, freeze: as for every ``Backbone``.
    """

    @configurable
    def __init__(
        self,
        *,
        arch: str,
        in_channels: int = 3,
        pretrained: str = "",
        pretrained_sha256: str = "",
        img_size: int = 0,
        drop_path_rate: float = 0.0,
        normalize_features: bool = False,
        freeze: bool = False,
    ):
        super().__init__(in_channels, normalize_features, freeze)
        self.model = create_timm_trunk(arch, in_channels, img_size, drop_path_rate)
        self.arch = arch
        self.input_spec = timm_input_spec(self.model, img_size)
        self.out_features = int(self.model.num_features)
        self._pretrained = (pretrained, pretrained_sha256)
        self._finish_init()

    @classmethod
    def from_config(cls, cfg):
        return library_trunk_kwargs(cfg)

    def init_weights(self) -> None:
        """Keep timm's initialisation; load ``MODEL.BACKBONE.PRETRAINED`` over it."""
        classifier = (getattr(self.model, "pretrained_cfg", None) or {}).get("classifier", "")
        load_pretrained_trunk(self.model, *self._pretrained, classifier=classifier or "")

    def layer_ids(self) -> Dict[str, int]:
        """Parameter name (relative to this backbone) -> depth rank (``SOLVER.LAYER_DECAY``)."""
        return timm_layer_ids(self.model, prefix="model.")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``forward_features``: a map ``(N, C, h, w)`` or tokens ``(N, T, C)``."""
        return self.model.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features the way the architecture pools them (class token, average...)."""
        self._check_input(x)
        feats = self.model(x)
        if self.normalize_features:
            feats = F.normalize(feats, dim=1)
        return feats
