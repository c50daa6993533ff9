"""The precisions the speed tables compare, and which one the base configs train with on a
device (``SOLVER.AMP.DTYPE auto``, ``MODEL.CHANNELS_LAST True``)."""

from typing import Optional, Tuple

import torch

from ride_dive.utils.env import resolve_amp

__all__ = [
    "COMPILE_SUFFIX",
    "FP32_CHANNELS_LAST",
    "PRECISIONS",
    "compiled_row",
    "default_precision",
    "precision_note",
    "speed_variants",
]

# (name, bf16 autocast, channels_last): the precisions the speed table compares. The last is
# what the dataset base configs train with on a CPU with AMX / AVX512-BF16 or a bf16 GPU
# (SOLVER.AMP.DTYPE auto, MODEL.CHANNELS_LAST True).
PRECISIONS = (("fp32", False, False), ("bf16", True, False), ("bf16 + channels_last", True, True))
# What the base configs train with where bf16 would be emulated ("auto" stays fp32).
FP32_CHANNELS_LAST = ("fp32 + channels_last", False, True)
# The suffix of ``--compile``'s extra row: the default precision with MODEL.COMPILE.ENABLED.
COMPILE_SUFFIX = " + compile"


def compiled_row(precision: Tuple[str, bool, bool]) -> Tuple[str, bool, bool]:
    """The row of ``precision`` with MODEL.COMPILE.ENABLED (its name ends in COMPILE_SUFFIX)."""
    name, bf16, channels_last = precision
    return name + COMPILE_SUFFIX, bf16, channels_last


def default_precision(device: torch.device) -> Tuple[str, bool, bool]:
    """The row the dataset base configs train with on ``device`` (``SOLVER.AMP.DTYPE auto``,
    ``MODEL.CHANNELS_LAST True``): bf16 + channels_last where bf16 is native (AMX,
    AVX512-BF16, a bf16 GPU), fp32 + channels_last where it would be emulated."""
    dtype, _ = resolve_amp(True, "auto", device)
    return PRECISIONS[-1] if dtype is not None else FP32_CHANNELS_LAST


def precision_note(device: torch.device) -> str:
    """One line for a table's header: the default precision here and why."""
    why = resolve_amp(True, "auto", device)[1]
    return f"default precision: {default_precision(device)[0]} ({why})"


def speed_variants(
    compiled: bool, device: Optional[torch.device] = None
) -> Tuple[Tuple[str, bool, bool], ...]:
    """The table's rows per model, with ``compiled`` also the default precision compiled
    (:func:`compiled_row`).

    Where bf16 is native (``device``: the CPU by default) the rows are :data:`PRECISIONS`,
    whose last is the default; where it would be emulated (a CPU without AMX / AVX512-BF16,
    where a bf16 step takes many times an fp32 one) fp32 and the default there,
    :data:`FP32_CHANNELS_LAST`.
    """
    default = default_precision(device or torch.device("cpu"))
    rows = PRECISIONS if default in PRECISIONS else (PRECISIONS[0], default)
    if compiled:
        rows += (compiled_row(default),)
    return rows
