"""Seeding, device selection and the autocast dtypes (training and evaluation)."""

import random
from typing import Optional, Tuple

import numpy as np
import torch


def seed_all(seed: int) -> None:
    """Seed python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A seed that depends on (seed, epoch, rank) only: what makes an epoch replayable."""
    return (seed * 1_000_003 + epoch * 10_007 + rank * 101) % 2**31


def resolve_device(name: str) -> torch.device:
    """Turn ``MODEL.DEVICE`` into a device: "auto" is cuda when available, else cpu.

    "cuda" / "auto" resolve to this process's current GPU (``cuda:<local rank>`` in a
    multi-GPU run), so every process uses its own device.
    """
    from ..config import ConfigError

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"MODEL.DEVICE='{name}' is not a device (use auto, cpu, cuda, cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"MODEL.DEVICE='{name}' but CUDA is not available; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is None:
        # The launcher set each process's GPU (its local rank); DDP needs the index.
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def cpu_fast_bf16() -> Tuple[bool, str]:
    """Whether this CPU runs bf16 matrix math natively (AMX or AVX512-BF16), and what it has.

    Without either, bf16 is emulated and slower than fp32, so ``DTYPE: auto`` stays fp32.
    """
    cpu = getattr(torch, "cpu", None)
    try:
        if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
            return True, "AMX"
        if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
            return True, "AVX512-BF16"
    except RuntimeError:  # cpuinfo could not read the CPU
        pass
    try:  # older torch without the queries: the kernel's flags (Linux)
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16")):
        if flag in flags:
            return True, name
    return False, "neither AMX nor AVX512-BF16"


def resolve_amp(
    enabled: bool, dtype: str, device: torch.device
) -> Tuple[Optional[torch.dtype], str]:
    """The autocast dtype for ``device`` (None = fp32) and one line saying why.

    ``dtype`` "auto" picks bf16 on a CPU with AMX / AVX512-BF16 and on a GPU that supports
    it, fp16 (with a gradient scaler in training) on older GPUs, and fp32 elsewhere; an
    explicit "bfloat16" / "float16" is used as given.
    """
    if not enabled:
        return None, "fp32 (AMP off)"
    if dtype != "auto":
        return getattr(torch, dtype), f"{dtype} autocast (as configured)"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "bf16 autocast: this GPU supports bf16"
        return torch.float16, "fp16 autocast: this GPU has no bf16"
    if device.type == "cpu":
        fast, what = cpu_fast_bf16()
        if fast:
            return torch.bfloat16, f"bf16 autocast: this CPU has {what}"
        return None, f"fp32: this CPU has {what}, so bf16 would be emulated (slower)"
    return None, f"fp32: no automatic autocast on {device.type}"


def _cfg_amp(cfg, amp) -> Tuple[Optional[torch.dtype], str]:
    if not amp.ENABLED:
        return None, "fp32 (AMP off)"
    device = resolve_device(cfg.MODEL.DEVICE) if amp.DTYPE == "auto" else torch.device("cpu")
    return resolve_amp(amp.ENABLED, amp.DTYPE, device)


def amp_dtype(cfg) -> Optional[torch.dtype]:
    """The training autocast dtype (``cfg.SOLVER.AMP``, "auto" resolved for
    ``MODEL.DEVICE``), or None for fp32.

    It also covers what a method computes for training outside the training step (the DiVE
    teacher's virtual examples, the ``auto`` temperature).
    """
    return _cfg_amp(cfg, cfg.SOLVER.AMP)[0]


def eval_amp_dtype(cfg) -> Optional[torch.dtype]:
    """The evaluation autocast dtype (``cfg.TEST.AMP``), or None (fp32, the default).

    Every evaluation uses it, never ``SOLVER.AMP``: evaluation numbers do not depend on the
    training precision.
    """
    return _cfg_amp(cfg, cfg.TEST.AMP)[0]


def autocast_name(dtype: Optional[torch.dtype]) -> str:
    """How results.json names the precision a model ran in: "float32" without autocast,
    "<dtype> autocast" (e.g. "bfloat16 autocast") with it."""
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"


def describe_precision(cfg) -> str:
    """The log line of a run's precision: training (SOLVER.AMP) and evaluation (TEST.AMP)."""
    _, why = _cfg_amp(cfg, cfg.SOLVER.AMP)
    _, eval_why = _cfg_amp(cfg, cfg.TEST.AMP)
    layout = "channels_last" if cfg.MODEL.CHANNELS_LAST else "NCHW"
    return f"Precision: training {why}, {layout}; evaluation {eval_why}"
