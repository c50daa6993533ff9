"""Put a loaded state dict into a model, naming every key that does not fit.

``nn.Module.load_state_dict`` stops at the first shape mismatch and, with ``strict=False``,
says nothing about skipped keys. Here all three kinds of mismatch (missing, unexpected,
wrong shape) are collected first; nothing is copied into the model unless the load is
going ahead, so a refused checkpoint leaves the model untouched.

A model may declare, per training stage, the key prefixes a checkpoint may lack or carry in
excess, as two tuple attributes: ``newly_initialized_prefixes`` (parts this stage
initialises itself, e.g. the routers of a RIDE router stage loading its stage-1 weights)
and ``unused_checkpoint_prefixes`` (parts a file may have that this config does not build,
e.g. routers when the router is disabled). Every other key is still checked strictly. When
weights are only evaluated (``training=False``), routers are never excused: a router stage
evaluated on its stage-1 weights would make its early-exit decisions with random routers.

A refusal names the offending keys and the config key most likely at fault (the number of
experts, classes or widths, the router), from the patterns of the keys alone.
"""

import logging
import re
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
    model: nn.Module,
    state_dict: Mapping,
    strict: bool = True,
    source: str = "checkpoint",
    training: bool = True,
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
        training: the model is about to be trained from these weights. False (evaluation)
            stops excusing missing routers (``router.*``) that a router stage would train.

    Returns:
        ``{"missing": [...], "unexpected": [...], "shape_mismatch": [...],
        "newly_initialized": [...], "unused": [...]}``; the last two are the keys the
        model's declared prefixes excused (see the module docstring).

    Raises:
        CheckpointMismatchError: with ``strict``, naming every offending key and the config
            key likely at fault.
    """
    model = unwrap_model(model)
    state_dict = strip_prefix(state_dict, "module.")
    own = model.state_dict()
    missing, unexpected, shapes = find_mismatches(own, state_dict)
    new_prefixes = tuple(getattr(model, "newly_initialized_prefixes", ()))
    if not training:
        new_prefixes = tuple(p for p in new_prefixes if not p.startswith("router."))
    missing, new = _split_by_prefix(missing, new_prefixes)
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
            advice = mismatch_advice(model, own, state_dict, missing, unexpected, shapes)
            raise CheckpointMismatchError(f"{summary}. {advice}")
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


_EXPERT_HEAD = re.compile(r"^heads\.(\d+)\.")
_EXPERT_KEY = re.compile(r"^(?:heads|backbone\.layer\d+s)\.(\d+)\.")
_EXPERT_STAGE = re.compile(r"^backbone\.layer\d+s\.")
# A classifier's per-class tensors: output size first (cosine, linear, LWS heads).
_CLASSIFIER = re.compile(r"^(?:heads\.\d+|head)\.(?:fc\.)?(?:weight|bias|scales)$")


def _num_experts(keys) -> int:
    found = {int(m.group(1)) for k in keys if (m := _EXPERT_HEAD.match(k))}
    return max(found) + 1 if found else 0


def mismatch_advice(
    model: nn.Module,
    own: Mapping,
    loaded: Mapping,
    missing: List[str],
    unexpected: List[str],
    shapes: List[Tuple[str, tuple, tuple]],
) -> str:
    """What to change so that ``loaded`` fits ``model``: the config key(s) that the pattern
    of the offending keys points at, most specific first."""
    advice = []
    if any(k.startswith("router.") for k in missing) and not any(
        k.startswith("router.") for k in loaded
    ):
        if getattr(model, "train_router", False):
            advice.append(
                "The file has no router weights (router.*) and this config is a router stage "
                "(MODEL.ROUTER.TRAIN True), which trains new routers from these weights: "
                "evaluating it would run untrained routers. Evaluate the router stage's own "
                "model_final.pth, or evaluate these weights with MODEL.ROUTER.ENABLED False "
                "(every expert, no early exit)"
            )
        else:
            advice.append(
                "The file has no router weights (router.*) but the config builds routers "
                "(MODEL.ROUTER.ENABLED True), which would decide early exits untrained: "
                "evaluate these weights with the experts' config (MODEL.ROUTER.ENABLED "
                "False), or train the routers first (the router stage, MODEL.ROUTER.TRAIN "
                "True, with these weights as MODEL.WEIGHTS)"
            )
    file_experts, model_experts = _num_experts(loaded), _num_experts(own)
    explained = set(k for k in missing if k.startswith("router."))
    # Another meta-architecture (RIDE vs single head) explains every other difference.
    other_arch = False
    if file_experts and model_experts and file_experts != model_experts:
        advice.append(
            f"The file has {file_experts} experts, the config builds {model_experts}: set "
            f"MODEL.RIDE.NUM_EXPERTS {file_experts}"
        )
        first_extra = min(file_experts, model_experts)
        explained |= {
            k
            for k in missing + unexpected
            if ((m := _EXPERT_KEY.match(k)) and int(m.group(1)) >= first_extra)
            or k.startswith("router.")  # E - 1 routers: their count follows the experts'
        }
    elif file_experts and not model_experts:
        advice.append(
            f"The file is a RIDE model with {file_experts} experts (heads.<e>.*) but the config "
            "builds a single-head model: use a RIDE config (MODEL.META_ARCHITECTURE 'RIDE', "
            f"MODEL.RIDE.NUM_EXPERTS {file_experts})"
        )
        other_arch = True
    elif model_experts and any(k.startswith("head.") for k in loaded):
        advice.append(
            "The file is a single-head model (head.*) but the config builds RIDE experts: use "
            "a single-head config (MODEL.META_ARCHITECTURE 'Classifier') like the file's"
        )
        other_arch = True
    classes = [(a[0], b[0]) for k, a, b in shapes if _CLASSIFIER.match(k) and a[:1] != b[:1]]
    if classes and not other_arch:
        theirs, ours = classes[0]
        advice.append(
            f"The file's classifier has {theirs} classes, the model {ours}: set "
            f"MODEL.NUM_CLASSES {theirs}, or use the dataset the file was trained on "
            "(MODEL.NUM_CLASSES 0 takes the number from it)"
        )
    widths = [
        (k, a, b)
        for k, a, b in shapes
        if k.startswith("backbone.") or (_CLASSIFIER.match(k) and a[1:] != b[1:])
    ]
    if widths and not other_arch:
        k, a, b = widths[0]
        example = f"{k} is {a} in the file, {b} in the model"
        if all(_EXPERT_STAGE.match(k) or _CLASSIFIER.match(k) for k, _, _ in widths):
            advice.append(
                f"The experts' widths differ ({example}): set MODEL.RIDE.EXPERT_WIDTHS as in "
                "the config that wrote the file"
            )
        else:
            stem = [(a[0], b[0]) for k, a, b in widths if k == "backbone.conv1.weight"]
            scale = (
                f"; its stem is {stem[0][0] / stem[0][1]:g} times as wide as this config's"
                if stem and stem[0][1]
                else ""
            )
            advice.append(
                f"The network widths differ ({example}{scale}): set MODEL.BACKBONE.WIDTH_MULT "
                "(and MODEL.RIDE.EXPERT_WIDTHS, MODEL.RESNET.GROUPS / WIDTH_PER_GROUP for "
                "those networks) as in the config that wrote the file"
            )
    if any(k.startswith("router.") for k, _, _ in shapes) and not other_arch:
        advice.append(
            "The routers' shapes differ: set MODEL.ROUTER.HIDDEN_DIM and MODEL.ROUTER.TOP_K as "
            "in the config that wrote the file"
        )
    other = [k for k in missing + unexpected if k not in explained]
    if other and not other_arch:
        advice.append(
            f"The layers differ ({other[0]} is only in the "
            f"{'model' if other[0] in own else 'file'}): the file was written for another "
            "MODEL.BACKBONE.NAME or MODEL.HEAD.NAME"
        )
    advice.append(
        "Use the config that wrote the file (the config.yaml of its run directory, or the "
        "config it was converted with) with the same KEY VALUE overrides"
    )
    return ". ".join(advice) + "."


def _split_by_prefix(keys: List[str], prefixes) -> Tuple[List[str], List[str]]:
    """``(keys without any of the prefixes, keys with one)``."""
    prefixes = tuple(prefixes)
    if not prefixes:
        return list(keys), []
    return (
        [k for k in keys if not k.startswith(prefixes)],
        [k for k in keys if k.startswith(prefixes)],
    )
