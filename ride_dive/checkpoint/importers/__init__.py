"""Convert checkpoints of the original RIDE and classifier-balancing code to ride_dive files.

    from ride_dive.checkpoint.importers import convert_checkpoint
    convert_checkpoint("RIDE_checkpoint.pth", "ride", cfg, "out.pth")

The file is read without running anything in it (``foreign_pickle``), its weights are
renamed (and, where the two code bases store them differently, reshaped) onto the model the
config builds, and loaded into that model strictly, so every missing, surplus or
mis-shaped weight is named. The result is an ordinary ride_dive checkpoint
``{"model": state_dict, "meta": {...}}`` for ``MODEL.WEIGHTS``.
"""

import difflib
import os
import shlex
from types import ModuleType
from typing import Any, Dict, Mapping, Optional

from ...config import CfgNode, ConfigError
from ...modeling import build_model
from ..model_state import CheckpointMismatchError, load_model_state
from ..serialization import (
    CheckpointError,
    atomic_torch_save,
    file_sha256,
    to_weights_only_safe,
)
from . import decoupling, ride
from .common import describe, fill_bn_counters, is_state_dict
from .foreign_pickle import load_foreign_checkpoint

__all__ = ["IMPORTERS", "conversion_hint", "convert_checkpoint"]

# Name (``--from``) -> module with NAME, TITLE, matches(obj), parse(obj),
# convert(parsed, model, drop_router), describe_file(parsed), suggest_config(parsed).
IMPORTERS: Dict[str, ModuleType] = {ride.NAME: ride, decoupling.NAME: decoupling}


def convert_checkpoint(
    source: str,
    source_format: str,
    cfg: CfgNode,
    output: Optional[str] = None,
    drop_router: bool = False,
) -> Dict[str, Any]:
    """Convert a foreign checkpoint into a ride_dive one for the model ``cfg`` builds.

    Args:
        source: the foreign ``.pth`` file.
        source_format: a key of ``IMPORTERS``: ``"ride"`` or ``"decoupling"``.
        cfg: the config the converted weights are for (the one later given to
            ``tools/train_net.py --eval-only``). With ``MODEL.NUM_CLASSES`` 0 the number of
            classes is taken from the file's classifier.
        output: where to write the result (atomically); None = do not write.
        drop_router: convert a RIDE file with expert-assignment routers for a config without
            a router, leaving the routers out (otherwise that is a ConfigError, since the
            converted model would lose its early exit).

    Returns:
        ``{"model": state_dict, "meta": {"converted_from", "source", "source_sha256",
        "num_classes", "file", "notes", "inert_globals", ...}}``, as written.

    Raises:
        ConfigError: unknown ``source_format``; the config builds another architecture
            than the file's (experts, classes, backbone, head, router), naming the key to
            set and a packaged config of the file's architecture.
        FileNotFoundError: ``source`` does not exist.
        CheckpointError: ``source`` is unreadable or not of ``source_format`` (the message
            says which format it looks like); ``output`` could not be written.
        CheckpointMismatchError: the file has parts with no ride_dive equivalent, or the
            strict load found missing / unexpected / mis-shaped keys.
    """
    importer = _importer(source_format)
    if (
        output
        and os.path.isfile(source)
        and os.path.isfile(output)
        and os.path.samefile(source, output)
    ):
        raise ConfigError(f"The output {output} is the source file; choose another path")
    obj, inert = load_foreign_checkpoint(source)
    if not importer.matches(obj):
        raise CheckpointError(
            f"'{source}' is not a {importer.TITLE} checkpoint: it holds "
            f"{describe(obj)}. {_guess(obj, importer.NAME)}"
        )
    parsed = importer.parse(obj)
    cfg = _conversion_cfg(cfg, parsed.num_classes)
    num_classes = cfg.MODEL.NUM_CLASSES
    # Class counts only shape loss buffers, which are not saved; uniform ones will do.
    model = build_model(cfg, class_counts=[1] * num_classes)
    # A config of another architecture: name one of the file's (its parts with no ride_dive
    # equivalent, CheckpointMismatchErrors of ``convert``, get no such hint).
    try:
        state, notes = importer.convert(parsed, model, drop_router=drop_router)
    except ConfigError as e:
        raise ConfigError(_with_hint(e, _family_hint(importer, parsed))) from e
    added = fill_bn_counters(state, model)
    try:
        report = load_model_state(model, state, strict=True, source=source)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(_with_hint(e, _family_hint(importer, parsed))) from e
    meta = {
        "converted_from": importer.NAME,
        "source": os.path.abspath(source),
        "source_sha256": file_sha256(source),
        "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
        "backbone": cfg.MODEL.BACKBONE.NAME,
        "head": cfg.MODEL.HEAD.NAME,
        "num_classes": num_classes,
        "file": {k: v for k, v in parsed.info.items() if v is not None},
        "notes": list(notes)
        + (
            [f"{len(added)} BatchNorm num_batches_tracked counters missing from the file set to 0"]
            if added
            else []
        ),
        "inert_globals": list(inert),
        "newly_initialized": report["newly_initialized"],
    }
    result = to_weights_only_safe({"model": model.state_dict(), "meta": meta})
    if output:
        try:
            atomic_torch_save(result, output)
        except OSError as e:  # disk full, permissions: nothing half-written is left
            raise CheckpointError(
                f"Could not write {output}: {e.strerror or e}. Nothing was written (an "
                "existing file of that name is unchanged); free space or choose another "
                "output path."
            ) from e
    return result


def _with_hint(error: Exception, hint: str) -> str:
    return f"{str(error).rstrip('. ')}.{hint}" if hint else str(error)


def _family_hint(importer: ModuleType, parsed) -> str:
    """`` The file is <what>; a config of that architecture: <config> [overrides].``"""
    try:
        what = importer.describe_file(parsed)
        suggestion = importer.suggest_config(parsed)
    except Exception:  # noqa: BLE001 - only a hint: never hide the error it decorates
        return ""
    if suggestion is None:
        return ""
    config, opts = suggestion
    return f" The file is {what}; a config of that architecture: {shlex.join([config, *opts])}."


def conversion_hint(source: str, obj: Any = None) -> Optional[str]:
    """What to do with a checkpoint of a format this package converts, given where it is
    not converted (``MODEL.WEIGHTS``): a sentence naming the format and the command that
    converts it. None for any other file.

    Args:
        source: the file.
        obj: its content if already loaded; else it is read here with inert stand-ins for
            foreign objects (``load_foreign_checkpoint``: nothing in it runs).
    """
    if obj is None:
        try:
            obj, _ = load_foreign_checkpoint(source)
        except Exception:  # noqa: BLE001 - unreadable, tampered with: not a foreign layout
            return None
    for name, importer in IMPORTERS.items():
        try:
            if not importer.matches(obj):
                continue
            parsed = importer.parse(obj)
            what = f" ({importer.describe_file(parsed)})"
            suggestion = importer.suggest_config(parsed)
        except Exception:  # noqa: BLE001 - an odd file of that layout: hint without details
            what, suggestion = "", None
        config, opts = suggestion or ("CONFIG.yaml", [])
        converted = os.path.splitext(source)[0] + "_ride_dive.pth"
        command = shlex.join(
            ["python", "tools/convert_checkpoint.py", "--from", name, source]
            + ["--config-file", config, converted, *opts]
        )
        which = (
            "a config of its architecture"
            if suggestion
            else "the ride_dive config of its architecture as CONFIG.yaml"
        )
        return (
            f"'{source}' is a checkpoint of the original {importer.TITLE} code{what}, which "
            "ride_dive does not load directly (nothing in the file was executed); convert "
            f"it first, with {which}, and set MODEL.WEIGHTS to the result: {command}"
        )
    return None


def _importer(name: str) -> ModuleType:
    if name in IMPORTERS:
        return IMPORTERS[name]
    close = difflib.get_close_matches(str(name), list(IMPORTERS), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"Unknown checkpoint format '{name}' (--from).{hint} Known formats: "
        f"{', '.join(f'{k} ({m.TITLE})' for k, m in IMPORTERS.items())}."
    )


def _guess(obj: Any, exclude: str) -> str:
    """What the file looks like instead, for the not-this-format message."""
    for name, other in IMPORTERS.items():
        if name != exclude and other.matches(obj):
            return f"It looks like a {other.TITLE} checkpoint: use --from {name}."
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        return (
            "It looks like a ride_dive checkpoint, which needs no conversion: give it to "
            "MODEL.WEIGHTS directly."
        )
    if is_state_dict(obj):
        keys = ", ".join(list(obj)[:4])
        return f"It is a bare state dict ({keys}, ...) of neither format's networks."
    return f"It matches none of the formats this tool converts ({', '.join(IMPORTERS)})."


def _conversion_cfg(cfg: CfgNode, num_classes: Optional[int]) -> CfgNode:
    """``cfg`` on the CPU, with ``MODEL.NUM_CLASSES`` checked against / taken from the file."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.CHANNELS_LAST = False
    # Converting builds the model, it trains nothing: a router stage's config (ROUTER.TRAIN)
    # gives the same weights, and would warn that its routers have no stage-1 weights.
    cfg.MODEL.ROUTER.TRAIN = False
    if cfg.MODEL.NUM_CLASSES <= 0:
        if num_classes is None:
            raise ConfigError(
                "The file has no classifier to take the number of classes from: "
                "set MODEL.NUM_CLASSES"
            )
        cfg.MODEL.NUM_CLASSES = num_classes
    elif num_classes is not None and num_classes != cfg.MODEL.NUM_CLASSES:
        raise ConfigError(
            f"The file's classifier has {num_classes} classes but "
            f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}: set it to "
            f"{num_classes} (or 0 to take it from the file)"
        )
    cfg.freeze()
    return cfg
