"""Helpers on ``nn.Module`` objects that every layer needs: unwrapping data-parallel
wrappers, and running a model for inference without losing its train/eval modes."""

import contextlib
from typing import Iterator, Mapping, Union

import torch
from torch import nn

__all__ = ["compile_for_training", "inference_context", "logits_of", "unwrap_model"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile``
    wrappers, or itself."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return model


def compile_for_training(model: nn.Module, cfg) -> nn.Module:
    """``torch.compile(model)`` per ``MODEL.COMPILE`` (the module itself when off).

    The caller keeps the plain module for checkpoints and evaluation: its ``state_dict``
    has no ``_orig_mod.`` prefix, so checkpoints load into an eager model.
    """
    c = cfg.MODEL.COMPILE
    if not c.ENABLED:
        return model
    return torch.compile(model, mode=None if c.MODE == "default" else c.MODE, backend=c.BACKEND)


@contextlib.contextmanager
def inference_context(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode under ``torch.inference_mode``; yields ``model``.

    On exit every submodule gets back its own previous ``training`` flag, not the top
    module's: ``model.train(was_training)`` would switch the frozen parts of a training
    model (a router stage's experts and heads, a frozen backbone, a teacher) back to
    training mode, and their BatchNorm statistics would then move.

    Tensors made inside are inference tensors: functional ops on them outside the context
    give ordinary tensors (``torch.cat``), but they cannot be modified in place or saved
    for backward there.
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        for module, training in modes:
            module.training = training


def logits_of(output: Union[torch.Tensor, Mapping]) -> torch.Tensor:
    """The logits of a model's eval-mode output: a tensor, or a dict's ``"logits"``.

    Raises:
        TypeError: any other output.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    raise TypeError(
        "in eval mode the model must return logits (a tensor, or a dict with a 'logits' "
        f"entry); got {type(output).__name__}"
    )
