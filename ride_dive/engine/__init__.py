"""Training engine: one trainer with hooks, set-up helpers and the process launcher."""
from .defaults import (
    DefaultTrainer,
    default_argument_parser,
    default_setup,
    save_config,
    setup_cfg,
)
from .evaluation import evaluate
from .hooks import EvalHook, IterationTimer, LRScheduler, PeriodicCheckpointer, PeriodicWriter
from .launch import launch
from .train_loop import HookBase, SimpleTrainer

__all__ = [
    "DefaultTrainer", "default_argument_parser", "default_setup", "evaluate", "save_config",
    "setup_cfg",
    "EvalHook", "IterationTimer", "LRScheduler", "PeriodicCheckpointer", "PeriodicWriter",
    "launch", "HookBase", "SimpleTrainer",
]
