"""Model size and compute: parameter counts and multiply-accumulates (MACs) via fvcore."""

import warnings
from typing import Sequence

import torch
from torch import nn

__all__ = ["count_macs", "count_parameters"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Giga-MACs per image of ``model`` in eval mode, counted by fvcore.

    fvcore's ``FlopCountAnalysis`` counts one multiply-add as one "flop", so its total is
    a MAC count (the convention of the RIDE/ResNet papers). Ops fvcore cannot count are
    skipped silently; every module's train/eval mode is restored afterwards.

    Args:
        model: a module whose ``forward(images)`` runs in eval mode (backbones, meta-archs).
        input_shape: ``(C, H, W)`` (one image) or ``(N, C, H, W)``; the result is per image.

    Returns:
        GMACs per image.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {input_shape}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    images = torch.zeros(shape, device=device, dtype=dtype)
    # Every submodule gets its own flag back afterwards, not the top module's (a frozen part
    # of a model in training stays in eval mode).
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        # fvcore's import and the JIT trace emit deprecation/tracer warnings that say
        # nothing about the model being measured.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, (images,))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            with torch.no_grad():
                total = analysis.total()
    finally:
        for module, training in modes:
            module.training = training
    return total / shape[0] / 1e9
