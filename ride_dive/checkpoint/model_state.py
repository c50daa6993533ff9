"""Put a loaded state dict into a model, naming every key that does not fit.

``nn.Module.load_state_dict`` stops at the first shape mismatch and, with ``strict=False``,
says nothing about skipped keys. Here all three kinds of mismatch (missing, unexpected,
wrong shape) are collected first; nothing is copied into the model unless the load is
going ahead, so a refused checkpoint leaves the model untouched.

A model may declare, per training stage, the key prefixes a checkpoint may lack or carry in
excess, as two tuple attributes: ``newly_initialized_prefixes`` (parts this stage
initialises itself, e.g. the routers of a RIDE router stage loading its stage-1 weights)
and ``unused_checkpoint_prefixes`` (parts a file may have that this config does not build,
e.g. routers when the router is disabled). Every other key is still checked strictly.
"""

import logging
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch
from torch import nn

from ..utils.modules import unwrap_model

logger = logging.getLogger(__name__)

# Long key lists are cut in messages (the count of the rest is still given): six keys show
# the pattern (a width, a class count) without a wall of keys.
_MAX_LISTED = 6


class CheckpointMismatchError(ValueError):
    """A readable checkpoint whose weights do not fit the model (keys or shapes differ)."""


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> Mapping:
    """Remove ``prefix`` from the keys when every key has it (files saved from DDP)."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        stripped = OrderedDict((k[len(prefix) :], v) for k, v in state_dict.items())
        metadata = getattr(state_dict, "_metadata", None)
        if metadata is not None:
            stripped._metadata = OrderedDict(
                (k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in metadata.items()
            )
        return stripped
    return state_dict


def _listing(keys: List[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    more = len(keys) - _MAX_LISTED
    return shown + (f" ... and {more} more" if more > 0 else "")


def find_mismatches(
    model_state: Mapping, loaded: Mapping
) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """Return ``(missing, unexpected, [(key, checkpoint_shape, model_shape), ...])``."""
    missing = [k for k in model_state if k not in loaded]
    unexpected = [k for k in loaded if k not in model_state]
    shapes = []
    for k, own in model_state.items():
        other = loaded.get(k)
        if isinstance(own, torch.Tensor) and isinstance(other, torch.Tensor):
            if own.shape != other.shape:
                shapes.append((k, tuple(other.shape), tuple(own.shape)))
    return missing, unexpected, shapes


def load_model_state(
    model: nn.Module, state_dict: Mapping, strict: bool = True, source: str = "checkpoint"
) -> Dict[str, List[str]]:
    """Copy ``state_dict`` into ``model`` (unwrapped from DDP first).

    Args:
        model: the model to fill.
        state_dict: parameter and buffer tensors by name (a ``module.`` prefix on every key
            is removed).
        strict: if True, any missing, unexpected or shape-mismatched key raises and the
            model is left unchanged. If False, the fitting keys are loaded and a warning
            names the others.
        source: where the weights came from (the file name), quoted in messages.

    Returns:
        ``{"missing": [...], "unexpected": [...], "shape_mismatch": [...],
        "newly_initialized": [...], "unused": [...]}``; the last two are the keys the
        model's declared prefixes excused (see the module docstring).

    Raises:
        CheckpointMismatchError: with ``strict``, naming every offending key.
    """
    model = unwrap_model(model)
    state_dict = strip_prefix(state_dict, "module.")
    missing, unexpected, shapes = find_mismatches(model.state_dict(), state_dict)
    missing, new = _split_by_prefix(missing, getattr(model, "newly_initialized_prefixes", ()))
    unexpected, unused = _split_by_prefix(
        unexpected, getattr(model, "unused_checkpoint_prefixes", ())
    )
    if new:
        logger.info("Not in %s, initialised by this stage: %s", source, _listing(new))
    if unused:
        logger.info("In %s but not built by this config, ignored: %s", source, _listing(unused))
    problems = [
        f"{label} ({len(keys)}): {_listing(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", [f"{k} {a} in file vs {b} in model" for k, a, b in shapes]),
        )
        if keys
    ]
    if problems:
        summary = f"Weights in {source} do not fit {type(model).__name__}: " + "; ".join(problems)
        if strict:
            raise CheckpointMismatchError(
                summary + ". Check that the config builds the same architecture (number of "
                "classes, experts, widths) as the one that wrote the file, or load with "
                "strict=False to take only the fitting weights."
            )
        logger.warning("%s. Loading only the fitting weights.", summary)
    bad = set(unexpected) | set(unused) | {k for k, _, _ in shapes}
    if bad:
        fitting = OrderedDict((k, v) for k, v in state_dict.items() if k not in bad)
        metadata = getattr(state_dict, "_metadata", None)
        if metadata is not None:
            fitting._metadata = metadata
        state_dict = fitting
    model.load_state_dict(state_dict, strict=False)
    return {
        "missing": missing,
        "unexpected": unexpected,
        "shape_mismatch": [k for k, _, _ in shapes],
        "newly_initialized": new,
        "unused": unused,
    }


def _split_by_prefix(keys: List[str], prefixes) -> Tuple[List[str], List[str]]:
    """``(keys without any of the prefixes, keys with one)``."""
    prefixes = tuple(prefixes)
    if not prefixes:
        return list(keys), []
    return (
        [k for k in keys if not k.startswith(prefixes)],
        [k for k in keys if k.startswith(prefixes)],
    )
