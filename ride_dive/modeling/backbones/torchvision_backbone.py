"""``TorchvisionBackbone``: any torchvision classification model builder as a trunk."""

import difflib
from typing import Tuple

from torch import nn

from ...config import ConfigError
from ..registry import BACKBONE_REGISTRY
from .library_trunk import IMAGENET_MEAN, IMAGENET_STD, BuiltTrunk, InputSpec, LibraryTrunkBackbone

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
    """``torchvision.models.get_model(arch)`` with random weights and no classifier, as a
    ``BuiltTrunk``.

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
    return BuiltTrunk(model, classifier, dim, _torchvision_input_spec(arch, img_size))


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
class TorchvisionBackbone(LibraryTrunkBackbone):
    """A torchvision classification model as trunk: the input of its final classifier.

    Args: those of ``LibraryTrunkBackbone``; ``arch`` is a builder name, e.g. ``resnet50``
    or ``convnext_tiny``, ``in_channels`` must be 3, and ``pretrained`` a local file or
    ``torchvision:<weights>``. Layer-wise decay counts the top-level modules.
    """

    create_trunk = staticmethod(create_torchvision_trunk)
