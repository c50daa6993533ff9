"""Pretrained trunk weights (``MODEL.BACKBONE.PRETRAINED``): a local file or a hub name.

Three forms, resolved by :func:`pretrained_state_dict`:

* ``""``: no pretrained weights (random initialisation).
* a local file (``.pth``/``.pt``/``.bin`` read with ``torch.load(weights_only=True)``, so a
  file can never run code; ``.safetensors`` through the ``safetensors`` package), checked
  against ``MODEL.BACKBONE.PRETRAINED_SHA256`` when that is set. A file that holds its
  weights under ``"state_dict"``, ``"model"`` or ``"module"`` (training checkpoints) and
  keys prefixed with ``module.`` (DDP) is unwrapped.
* ``timm:<model name>`` / ``torchvision:<weights enum>`` (e.g.
  ``torchvision:ResNet50_Weights.IMAGENET1K_V2``): downloaded by that library into its own
  cache (torch.hub / huggingface_hub) when the machine is online.

:func:`load_into` copies the weights into a module and logs, as the checkpointer does,
every key that does not fit; the pretrained classifier (which a trunk does not build) is
named as ignored instead.
"""

import logging
import os
import pickle
from collections import OrderedDict
from typing import Dict, Iterable, Mapping, Optional

import torch
from torch import nn

from ..config import ConfigError
from ..utils.file_io import file_sha256
from ..utils.pickle_scan import refusal_message, refused_globals

__all__ = ["pretrained_state_dict", "load_into"]

logger = logging.getLogger("ride_dive")

_KEY = "MODEL.BACKBONE.PRETRAINED"
_NESTED_KEYS = ("state_dict", "model", "module")
_MAX_LISTED = 6


def _unwrap(state) -> Dict[str, torch.Tensor]:
    for key in _NESTED_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise ConfigError(
            f"{_KEY}: the file holds no state dict of tensors (found {type(state).__name__}). "
            "Save one with torch.save(model.state_dict(), path)."
        )
    if state and all(k.startswith("module.") for k in state):
        state = OrderedDict((k[len("module.") :], v) for k, v in state.items())
    return dict(state)


def _read_file(path: str) -> Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise ConfigError(
                f"{_KEY}='{path}' is a .safetensors file, which needs the safetensors package: "
                "pip install safetensors (timm installs it)"
            ) from e
        return load_file(path, device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        refused = refused_globals(path)
        if refused:  # name what the pickle asked for, as the checkpointer does
            raise ConfigError(f"{_KEY}: {refusal_message(path, refused)}") from e
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"{_KEY}='{path}' cannot be read as a weights-only PyTorch file ({first}). Files "
            "that need arbitrary Python objects to load are refused, since unpickling them "
            "can run code; save the weights with torch.save(model.state_dict(), path)."
        ) from e


def _from_hub(spec: str) -> Dict[str, torch.Tensor]:
    library, _, name = spec.partition(":")
    try:
        if library == "timm":
            import timm

            return timm.create_model(name, pretrained=True, num_classes=0).state_dict()
        from torchvision.models import get_weight

        return get_weight(name).get_state_dict(progress=False)
    except ImportError as e:
        raise ConfigError(f"{_KEY}='{spec}' needs timm: pip install 'ride_dive[timm]'") from e
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"{_KEY}='{spec}': {library} could not provide these weights ({first}). Offline, "
            "download them on a machine that is online (the library caches them) or give the "
            f"path of a local file instead; a {library} weights name looks like "
            + (
                "'timm:vit_base_patch16_224.augreg_in21k'"
                if library == "timm"
                else "'torchvision:ResNet50_Weights.IMAGENET1K_V2'"
            )
        ) from e


def pretrained_state_dict(spec: str, sha256: str = "") -> Optional[Dict[str, torch.Tensor]]:
    """The weights ``spec`` names (see the module docstring), or None for ``""``.

    Raises:
        ConfigError: a missing or unreadable file, a sha256 that differs, a hub name that
            cannot be fetched; each message names ``MODEL.BACKBONE.PRETRAINED``.
    """
    if not spec:
        return None
    if spec.startswith(("timm:", "torchvision:")):
        return _unwrap(_from_hub(spec))
    if not os.path.isfile(spec):
        raise ConfigError(
            f"{_KEY}='{spec}': no such file. Give the path of a local weights file (.pth, .pt, "
            ".bin, .safetensors), a hub name ('timm:<model>' or 'torchvision:<weights>'), or "
            "'' for random initialisation."
        )
    if sha256:
        actual = file_sha256(spec)
        if actual != sha256.lower():
            raise ConfigError(
                f"{_KEY}='{spec}' has sha256 {actual}, but MODEL.BACKBONE.PRETRAINED_SHA256 "
                f"expects {sha256}: the file is not the one the config names (a partial "
                "download, or another model's weights)."
            )
    return _unwrap(_read_file(spec))


def _listing(keys: Iterable[str]) -> str:
    keys = list(keys)
    more = len(keys) - _MAX_LISTED
    return ", ".join(keys[:_MAX_LISTED]) + (f" ... and {more} more" if more > 0 else "")


def load_into(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    classifier_prefixes: Iterable[str] = (),
) -> Dict[str, list]:
    """Copy the fitting tensors of ``state`` into ``module``; log the rest.

    Args:
        module: the trunk (its own key names, no ``backbone.`` prefix).
        state: the pretrained state dict.
        source: what to call the weights in messages (the config value).
        classifier_prefixes: key prefixes of the pretrained model's classifier, which a
            trunk leaves out on purpose: reported as ignored, not as unexpected.

    Returns:
        ``{"missing": [...], "unexpected": [...], "shape_mismatch": [...], "ignored": [...]}``.

    Raises:
        ConfigError: when not a single tensor fits (the file is another architecture's).
    """
    own = module.state_dict()
    prefixes = tuple(p for p in classifier_prefixes if p)
    ignored = [k for k in state if k not in own and prefixes and k.startswith(prefixes)]
    unexpected = [k for k in state if k not in own and k not in ignored]
    shapes = [k for k in state if k in own and own[k].shape != state[k].shape]
    fitting = {k: v for k, v in state.items() if k in own and k not in shapes}
    missing = [k for k in own if k not in fitting]
    if not fitting:
        raise ConfigError(
            f"{_KEY}='{source}': none of its {len(state)} tensors fits "
            f"{type(module).__name__} (e.g. {_listing(list(state)[:3])} vs the model's "
            f"{_listing(list(own)[:3])}). The file is another architecture's; check "
            "MODEL.BACKBONE.ARCH."
        )
    module.load_state_dict(fitting, strict=False)
    if ignored:
        logger.info(
            "Pretrained %s: classifier not used by the trunk: %s", source, _listing(ignored)
        )
    problems = [
        f"{label} ({len(keys)}): {_listing(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            (
                "shape mismatches",
                [
                    f"{k} {tuple(state[k].shape)} in file vs {tuple(own[k].shape)} in model"
                    for k in shapes
                ],
            ),
        )
        if keys
    ]
    if problems:
        logger.warning(
            "Pretrained weights %s do not fully fit %s: %s. Loaded the %d fitting tensors; the "
            "rest keep their random initialisation.",
            source,
            type(module).__name__,
            "; ".join(problems),
            len(fitting),
        )
    else:
        logger.info("Pretrained weights: all %d tensors loaded from %s", len(fitting), source)
    return {
        "missing": missing,
        "unexpected": unexpected,
        "shape_mismatch": shapes,
        "ignored": ignored,
    }
