"""``TimmBackbone``: any ``timm.create_model`` architecture as a single-head trunk.

timm is an optional dependency (``pip install 'ride_dive[timm]'``); naming a timm backbone
without it is a config error that says so.
"""

import difflib
from typing import Dict

import torch

from ...config import ConfigError
from ..registry import BACKBONE_REGISTRY
from .library_trunk import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BuiltTrunk,
    InputSpec,
    LibraryTrunkBackbone,
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
    """``timm.create_model(arch)`` without its classifier (``num_classes=0``), random weights,
    as a ``BuiltTrunk``.

    Raises:
        ConfigError: timm missing, ``arch`` not a timm model (with the closest names), or
            arguments the architecture does not take.
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
        model = timm.create_model(arch, pretrained=False, **kwargs)
    except TypeError as e:  # e.g. img_size given to a convolutional network
        raise ConfigError(
            f"timm's {arch} does not take these arguments ({e}); MODEL.BACKBONE.IMG_SIZE is for "
            "transformers (leave it 0 for convolutional networks)."
        ) from e
    cfg = getattr(model, "pretrained_cfg", None) or {}
    spec = InputSpec(
        img_size or int(cfg.get("input_size", (3, 224, 224))[-1]),
        tuple(cfg.get("mean", IMAGENET_MEAN)),
        tuple(cfg.get("std", IMAGENET_STD)),
    )
    return BuiltTrunk(model, cfg.get("classifier", "") or "", int(model.num_features), spec)


def timm_layer_ids(model, prefix: str = "") -> Dict[str, int]:
    """Parameter name -> depth rank from timm's own ``group_matcher`` (what timm's layer
    decay uses: for a ViT the embeddings are 0, block i is i + 1, the final norm last)."""
    from timm.models import group_parameters

    groups = group_parameters(model, model.group_matcher(coarse=False), reverse=False)
    return {prefix + name: rank for rank, names in enumerate(groups.values()) for name in names}


@BACKBONE_REGISTRY.register()
class TimmBackbone(LibraryTrunkBackbone):
    """A timm model as trunk: its pooled pre-logits features ``(N, num_features)``.

    Args: those of ``LibraryTrunkBackbone``; ``arch`` is a timm model name, e.g.
    ``vit_base_patch16_224``, and ``pretrained`` a local file or ``timm:<name>``.
    """

    create_trunk = staticmethod(create_timm_trunk)
    library_layer_ids = staticmethod(timm_layer_ids)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``forward_features``: a map ``(N, C, h, w)`` or tokens ``(N, T, C)``."""
        return self.model.forward_features(x)
