"""``TorchvisionBackbone``: any torchvision classification model builder as a trunk."""

import difflib
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError, configurable
from ..registry import BACKBONE_REGISTRY
from .base import Backbone
from .library_trunk import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    library_trunk_kwargs,
    load_pretrained_trunk,
    top_level_layer_ids,
)

__all__ = ["TorchvisionBackbone", "create_torchvision_trunk"]

# Where torchvision's classification models keep their final classifier.
_CLASSIFIER_ROOTS = ("fc", "classifier", "heads", "head")


def _remove_classifier(model: nn.Module) -> Tuple[str, int]:
    """Replace the last ``nn.Linear`` under a classifier attribute by ``nn.Identity``.

    Returns its dotted name and input width (the feature dimension).
    """
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[0] in _CLASSIFIER_ROOTS:
            last = (name, module)
    if last is None:
        raise ConfigError(
            f"{type(model).__name__} has no final nn.Linear under {'/'.join(_CLASSIFIER_ROOTS)}; "
            "it is not a torchvision classification model TorchvisionBackbone can use."
        )
    name, linear = last
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    setattr(parent, name.rsplit(".", 1)[-1], nn.Identity())
    return name, linear.in_features


def create_torchvision_trunk(arch: str, in_channels: int, img_size: int, drop_path_rate: float):
    """``torchvision.models.get_model(arch)`` with random weights and no classifier.

    Returns ``(model, classifier_name, feature_dim, input_spec)``.

    Raises:
        ConfigError: an unknown builder name (with the closest), 1-channel input, or
            arguments the builder does not take.
    """
    from torchvision import models

    names = models.list_models(module=models)
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=3)
        hint = f" Closest torchvision names: {', '.join(close)}." if close else ""
        raise ConfigError(
            f"MODEL.BACKBONE.ARCH='{arch}' is not a torchvision classification model.{hint}"
        )
    if in_channels != 3:
        raise ConfigError(
            f"TorchvisionBackbone builds 3-channel models; MODEL.BACKBONE.IN_CHANNELS is "
            f"{in_channels}. Use TimmBackbone (in_chans) or set IN_CHANNELS 3."
        )
    kwargs = {}
    if img_size > 0:
        kwargs["image_size"] = img_size  # the vision transformers' argument
    if drop_path_rate > 0:
        kwargs["stochastic_depth_prob"] = drop_path_rate  # ConvNeXt, Swin, EfficientNet
    try:
        model = models.get_model(arch, weights=None, **kwargs)
    except TypeError as e:
        raise ConfigError(
            f"torchvision's {arch} does not take these arguments ({e}): MODEL.BACKBONE.IMG_SIZE "
            "is for its vision transformers, DROP_PATH_RATE for ConvNeXt/Swin/EfficientNet."
        ) from e
    classifier, dim = _remove_classifier(model)
    return model, classifier, dim, _torchvision_input_spec(arch, img_size)


def _torchvision_input_spec(arch: str, img_size: int) -> InputSpec:
    """The crop size and normalisation of the builder's default weights (no download)."""
    from torchvision import models

    size, mean, std = 224, IMAGENET_MEAN, IMAGENET_STD
    try:
        preset = models.get_model_weights(arch).DEFAULT.transforms()
        size = int(preset.crop_size[0])
        mean, std = tuple(preset.mean), tuple(preset.std)
    except (ValueError, AttributeError, KeyError):
        pass  # a builder without registered weights: ImageNet's defaults
    return InputSpec(img_size or size, mean, std)


@BACKBONE_REGISTRY.register()
class TorchvisionBackbone(Backbone):
    """A torchvision classification model as trunk: the input of its final classifier.

    Args:
        arch: the builder name (``MODEL.BACKBONE.ARCH``), e.g. ``resnet50``, ``convnext_tiny``.
        in_channels: must be 3.
        pretrained: ``MODEL.BACKBONE.PRETRAINED`` (a local file, ``torchvision:<weights>``,
            or "").
        pretrained_sha256, img_size, drop_path_rate, normalize_features, freeze: as for
            ``TimmBackbone``.
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
        self.model, self._classifier, self.out_features, self.input_spec = create_torchvision_trunk(
            arch, in_channels, img_size, drop_path_rate
        )
        self.arch = arch
        self._pretrained = (pretrained, pretrained_sha256)
        self._finish_init()

    @classmethod
    def from_config(cls, cfg):
        return library_trunk_kwargs(cfg)

    def init_weights(self) -> None:
        """Keep torchvision's initialisation; load ``MODEL.BACKBONE.PRETRAINED`` over it."""
        load_pretrained_trunk(self.model, *self._pretrained, classifier=self._classifier)

    def layer_ids(self) -> Dict[str, int]:
        """Parameter name -> index of its top-level module (``SOLVER.LAYER_DECAY``)."""
        return top_level_layer_ids(self.model, prefix="model.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The features torchvision's classifier would see ``(N, out_features)``."""
        self._check_input(x)
        feats = self.model(x)
        if self.normalize_features:
            feats = F.normalize(feats, dim=1)
        return feats
