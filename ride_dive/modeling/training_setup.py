"""Steps a model's components take before training: the first of the two extension points.

A module anywhere in the model (the meta-architecture, a head, a loss) that must do
something once before the first training step defines ``before_training(ctx)``. The
trainer calls :func:`prepare_for_training` from one hook, only when it trains (never for
``--eval-only``), after the checkpoint or ``MODEL.WEIGHTS`` has loaded. Today:

* the meta-architecture attaches the frozen teacher when its loss distils (DiVE);
* ``DiVELoss`` resolves ``DISTILL.TEMPERATURE: auto`` from the teacher's virtual examples;
* a head with ``MODEL.HEAD.REINIT`` re-initialises itself (cRT), unless the run resumed;
* ``NCMHead`` refuses to be trained.

Modules are visited in ``model.modules()`` order, parents before children, so a loss sees
the teacher its meta-architecture attached. ``before_training`` may return a short string
saying what it did; it is logged.

The context (:class:`TrainingSetupContext`) carries the run and a few generic services, so
that a component needs nothing from the engine: building and loading another model from a
config, and a test-time loader over a dataset.
"""

import logging
from collections import Counter
from typing import Sequence

import torch
from torch import nn

from ..utils.modules import unwrap_model

__all__ = ["TrainingSetupContext", "prepare_for_training"]

logger = logging.getLogger("ride_dive")


class TrainingSetupContext:
    """What ``before_training(ctx)`` can use. The trainer provides an implementation.

    Attributes:
        cfg: the run's (frozen) config.
        model: the model being trained (unwrapped from DDP).
        train_dataset: the training split.
        class_counts: training images per class.
        device: where the model trains.
        resumed: True when the run continues from its own checkpoint (``--resume``).
    """

    cfg = None
    model: nn.Module = None
    train_dataset = None
    class_counts: Sequence[int] = ()
    device: torch.device = torch.device("cpu")
    resumed: bool = False

    def load_model(self, cfg) -> nn.Module:
        """A model built from ``cfg`` with ``cfg.MODEL.WEIGHTS`` loaded (``weights_only``),
        in eval mode, on :attr:`device`."""
        raise NotImplementedError

    def loader(self, dataset):
        """A loader over ``dataset`` with the test-time transform and ``TEST.BATCH_SIZE``
        (this rank's shard in a distributed run)."""
        raise NotImplementedError

    @property
    def autocast_dtype(self):
        """The autocast dtype of the run (``SOLVER.AMP``), or None."""
        raise NotImplementedError


def prepare_for_training(model: nn.Module, ctx: TrainingSetupContext) -> None:
    """Call ``before_training(ctx)`` on every module of ``model`` that defines it.

    Raises whatever a step raises (e.g. ``ConfigError`` for an evaluation-only head).
    """
    done = Counter()
    for module in unwrap_model(model).modules():
        step = getattr(module, "before_training", None)
        if callable(step):
            message = step(ctx)
            if message:
                done[message] += 1
    for message, count in done.items():
        logger.info(message if count == 1 else f"{message} (x{count})")
