"""Checkpoints: atomic saves, ``weights_only`` loads, resume with fallback, RNG state."""

# unwrap_model is re-exported for existing callers; it lives with the module helpers.
from ..utils.modules import unwrap_model
from .checkpointer import Checkpointer
from .model_state import CheckpointMismatchError, load_model_state
from .rng import capture_rng_state, restore_rng_state
from .serialization import (
    CheckpointError,
    atomic_torch_save,
    atomic_write,
    atomic_write_text,
    file_sha256,
    safe_torch_load,
    to_weights_only_safe,
)
from .trained_model import load_trained_model

__all__ = [
    "Checkpointer",
    "CheckpointError",
    "CheckpointMismatchError",
    "load_model_state",
    "load_trained_model",
    "unwrap_model",
    "capture_rng_state",
    "restore_rng_state",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_text",
    "file_sha256",
    "safe_torch_load",
    "to_weights_only_safe",
]
