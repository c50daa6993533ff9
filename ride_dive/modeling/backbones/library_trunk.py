"""What the timm and torchvision adapters share: input spec, weights, layer ids.

A *library trunk* is a model built by timm or torchvision with its classifier removed. The
adapters (``TimmBackbone``, ``TorchvisionBackbone`` and their RIDE versions) keep the
library's own initialisation (``init_weights`` loads ``MODEL.BACKBONE.PRETRAINED`` instead
of re-initialising), record the input size and normalisation the weights were trained with
(``input_spec``), and number their parameters by depth (``layer_ids``) for layer-wise
learning-rate decay (``SOLVER.LAYER_DECAY``).
"""

import logging
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError, configurable
from ...utils.model_input import model_input_size
from ..pretrained_weights import load_into, pretrained_state_dict
from .base import Backbone

__all__ = [
    "BuiltTrunk",
    "InputSpec",
    "LibraryTrunkBackbone",
    "library_trunk_kwargs",
    "load_pretrained_trunk",
    "top_level_layer_ids",
    "warn_if_input_differs",
]

logger = logging.getLogger("ride_dive")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """The input a trunk's pretrained weights expect: square side and per-channel mean/std
    on the 0..1 scale."""

    size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]


@dataclass
class BuiltTrunk:
    """A library model built without its classifier (random weights) and what it is.

    Attributes:
        model: the library's module.
        classifier: key prefix of the classifier it was built without ("" if none).
        dim: the feature dimension it outputs.
        input_spec: the input its pretrained weights expect.
    """

    model: nn.Module
    classifier: str
    dim: int
    input_spec: InputSpec


def top_level_layer_ids(model: nn.Module, prefix: str = "") -> Dict[str, int]:
    """Parameter name -> the rank of the top-level module it is in, in the order they run;
    a top-level ``nn.Sequential`` counts each of its entries separately.

    The generic depth for layer-wise decay: a torchvision ResNet's ``conv1`` is 0, ``bn1``
    1, ``layer1.0`` 2 ... its last block last; a ConvNeXt's ``features.0`` ... ``features.7``
    then ``classifier``.
    """
    sequential = {n for n, m in model.named_children() if isinstance(m, nn.Sequential)}
    ids, order = {}, {}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        unit = ".".join(parts[:2]) if parts[0] in sequential and len(parts) > 2 else parts[0]
        ids[prefix + name] = order.setdefault(unit, len(order))
    return ids


def load_pretrained_trunk(model: nn.Module, spec: str, sha256: str, classifier: str) -> None:
    """Load ``MODEL.BACKBONE.PRETRAINED`` into ``model`` (the library's model itself), if set.

    Args:
        model: the timm/torchvision model, classifier already removed.
        spec: a local file, ``timm:...``/``torchvision:...``, or "".
        sha256: the expected sha256 of a local file, or "".
        classifier: key prefix of the pretrained classifier, reported as not used.
    """
    state = pretrained_state_dict(spec, sha256)
    if state is None:
        return
    load_into(model, state, spec, classifier_prefixes=(classifier + ".",) if classifier else ())


def library_trunk_kwargs(cfg) -> dict:
    """The ``MODEL.BACKBONE`` keys every library-trunk adapter takes."""
    b = cfg.MODEL.BACKBONE
    if not b.ARCH:
        raise ConfigError(
            f"MODEL.BACKBONE.NAME {b.NAME} needs MODEL.BACKBONE.ARCH: the library's model name "
            "(e.g. 'vit_base_patch16_224' for timm, 'resnet50' for torchvision)."
        )
    pretrained = b.PRETRAINED
    if pretrained and cfg.MODEL.WEIGHTS:
        # The whole model's weights come next (a second stage, --eval-only, a teacher):
        # fetching the pretrained trunk first would only cost a download.
        logger.info(
            "MODEL.BACKBONE.PRETRAINED %s not loaded: MODEL.WEIGHTS %s replaces it",
            pretrained,
            cfg.MODEL.WEIGHTS,
        )
        pretrained = ""
    return {
        "arch": b.ARCH,
        "in_channels": b.IN_CHANNELS,
        "pretrained": pretrained,
        "pretrained_sha256": b.PRETRAINED_SHA256,
        "img_size": b.IMG_SIZE,
        "drop_path_rate": b.DROP_PATH_RATE,
        "normalize_features": b.NORMALIZE_FEATURES,
        "freeze": b.FREEZE,
    }


def warn_if_input_differs(backbone: nn.Module, cfg) -> None:
    """Warn when the config feeds pretrained weights another input than they were trained on.

    The weights' ``input_spec`` (from the library's pretrained config) against
    ``INPUT.PIXEL_MEAN/STD`` and the model's input side: fine-tuning still works either way,
    but usually worse, and the fix is one config key.
    """
    spec = getattr(backbone, "input_spec", None)
    if spec is None or not cfg.MODEL.BACKBONE.PRETRAINED or cfg.MODEL.WEIGHTS:
        return
    mean = tuple(round(float(m), 4) for m in cfg.INPUT.PIXEL_MEAN)
    if mean != tuple(round(float(m), 4) for m in spec.mean):
        logger.warning(
            "The pretrained weights of %s were trained on inputs normalised with mean %s / std "
            "%s, but INPUT.PIXEL_MEAN is %s: set INPUT.PIXEL_MEAN %s INPUT.PIXEL_STD %s unless "
            "this is on purpose.",
            getattr(backbone, "arch", type(backbone).__name__),
            list(spec.mean),
            list(spec.std),
            list(mean) if mean else "empty (the dataset's statistics)",
            list(spec.mean),
            list(spec.std),
        )
    size = model_input_size(cfg)
    if size != spec.size:
        logger.warning(
            "The pretrained weights of %s expect %d-pixel inputs; this config feeds %d "
            "(INPUT.CROP_SIZE, or INPUT.UPSAMPLE_SIZE for in-memory sets).",
            getattr(backbone, "arch", type(backbone).__name__),
            spec.size,
            size,
        )


class LibraryTrunkBackbone(Backbone):
    """A library model as single-head trunk: its pooled features ``(N, dim)``.

    Subclasses (``TimmBackbone``, ``TorchvisionBackbone``) set ``create_trunk``
    (``(arch, in_channels, img_size, drop_path_rate) -> BuiltTrunk``) and
    ``library_layer_ids`` (``(model, prefix) -> {parameter name: depth}``).

    Args:
        arch: the library's model name (``MODEL.BACKBONE.ARCH``).
        in_channels: input channels.
        pretrained: ``MODEL.BACKBONE.PRETRAINED`` (a local file, a hub name, or "").
        pretrained_sha256: the expected sha256 of the local file, or "".
        img_size: input side for transformers (0 = the architecture's default).
        drop_path_rate: stochastic depth (0 = off).
        normalize_features, freeze: as for every ``Backbone``.
    """

    create_trunk: Callable[..., BuiltTrunk]
    library_layer_ids: Callable[..., Dict[str, int]] = staticmethod(top_level_layer_ids)

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
        trunk = type(self).create_trunk(arch, in_channels, img_size, drop_path_rate)
        self.model, self.out_features, self.input_spec = trunk.model, trunk.dim, trunk.input_spec
        self.arch = arch
        self._pretrained = (pretrained, pretrained_sha256, trunk.classifier)
        self._finish_init()

    @classmethod
    def from_config(cls, cfg):
        return library_trunk_kwargs(cfg)

    def init_weights(self) -> None:
        """Keep the library's initialisation; load ``MODEL.BACKBONE.PRETRAINED`` over it."""
        load_pretrained_trunk(self.model, *self._pretrained)

    def layer_ids(self) -> Dict[str, int]:
        """Parameter name (relative to this backbone) -> depth rank (``SOLVER.LAYER_DECAY``)."""
        return type(self).library_layer_ids(self.model, prefix="model.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features the way the architecture pools them (class token, average...)."""
        self._check_input(x)
        feats = self.model(x)
        return F.normalize(feats, dim=1) if self.normalize_features else feats
