"""A trained model from its config: build it and load ``MODEL.WEIGHTS`` in one call."""

from typing import Optional, Sequence, Union

import torch
from torch import nn

from ..modeling import build_model
from .checkpointer import Checkpointer

__all__ = ["load_trained_model"]


def load_trained_model(
    cfg,
    class_counts: Optional[Sequence[int]] = None,
    device: Optional[Union[str, torch.device]] = None,
    weights: Optional[str] = None,
) -> nn.Module:
    """``build_model(cfg, class_counts)`` with ``weights`` (default ``cfg.MODEL.WEIGHTS``)
    loaded (``weights_only``; a ``zoo:`` name resolves through the path manager), in eval
    mode, on ``device`` when given.

    Raises:
        FileNotFoundError / CheckpointError / CheckpointMismatchError: as
            ``Checkpointer.load``.
    """
    model = build_model(cfg, class_counts)
    # Evaluation only: a router stage's config must not run untrained routers.
    Checkpointer(model, "").load(weights or cfg.MODEL.WEIGHTS, checkpointables=[], training=False)
    if device is not None:
        model.to(device)
    return model.eval()
