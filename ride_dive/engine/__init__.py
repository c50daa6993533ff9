"""Training engine: one trainer with hooks, set-up helpers and the process launcher."""

from .. import model_zoo  # noqa: F401  (registers the zoo: path handler)
from ..evaluation import evaluate  # re-exported: engine.evaluate predates evaluation's
from .defaults import (
    DefaultTrainer,
    default_argument_parser,
    default_setup,
    save_config,
    setup_cfg,
)
from .hooks import (
    EvalHook,
    IterationTimer,
    LRScheduler,
    PeriodicCheckpointer,
    PeriodicWriter,
    PrepareForTraining,
)
from .launch import launch
from .train_loop import HookBase, SimpleTrainer

__all__ = [
    "DefaultTrainer",
    "default_argument_parser",
    "default_setup",
    "evaluate",
    "save_config",
    "setup_cfg",
    "EvalHook",
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "PeriodicWriter",
    "PrepareForTraining",
    "launch",
    "HookBase",
    "SimpleTrainer",
]
