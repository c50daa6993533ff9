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
from types import ModuleType
from typing import Any, Dict, Mapping, Optional

from ...config import CfgNode, ConfigError
from ...modeling import build_model
from ..model_state import load_model_state
from ..serialization import (
    CheckpointError,
    atomic_torch_save,
    file_sha256,
    to_weights_only_safe,
)
from . import decoupling, ride
from .common import describe, fill_bn_counters, is_state_dict
from .foreign_pickle import load_foreign_checkpoint

__all__ = ["IMPORTERS", "convert_checkpoint"]

# Name (``--from``) -> module with NAME, TITLE, matches(obj), parse(obj), convert(parsed, model).
IMPORTERS: Dict[str, ModuleType] = {ride.NAME: ride, decoupling.NAME: decoupling}


def convert_checkpoint(
    source: str, source_format: str, cfg: CfgNode, output: Optional[str] = None
) -> Dict[str, Any]:
    """Convert a foreign checkpoint into a ride_dive one for the model ``cfg`` builds.

    Args:
        source: the foreign ``.pth`` file.
        source_format: a key of ``IMPORTERS``: ``"ride"`` or ``"decoupling"``.
        cfg: the config the converted weights are for (the one later given to
            ``tools/train_net.py --eval-only``). With ``MODEL.NUM_CLASSES`` 0 the number of
            classes is taken from the file's classifier.
        output: where to write the result (atomically); None = do not write.

    Returns:
        ``{"model": state_dict, "meta": {"converted_from", "source", "source_sha256",
        "num_classes", "file", "notes", "inert_globals", ...}}``, as written.

    Raises:
        ConfigError: unknown ``source_format``; the config builds another architecture
            than the file's (experts, classes, backbone, head), naming the key to set.
        FileNotFoundError: ``source`` does not exist.
        CheckpointError: ``source`` is unreadable or not of ``source_format`` (the message
            says which format it looks like).
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
    state, notes = importer.convert(parsed, model)
    added = fill_bn_counters(state, model)
    report = load_model_state(model, state, strict=True, source=source)
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
        atomic_torch_save(result, output)
    return result


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
