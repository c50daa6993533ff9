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
from typing import Dict, Tuple

from torch import nn

from ...config import ConfigError
from ...utils.model_input import model_input_size
from ..pretrained_weights import load_into, pretrained_state_dict

__all__ = [
    "InputSpec",
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
