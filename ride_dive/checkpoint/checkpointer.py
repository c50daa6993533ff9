"""Save and restore the whole training state: model, optimizer, scheduler and extra state.

Layout of ``save_dir``: ``<name>.pth`` files, each a dict ``{"model": state_dict,
"optimizer": ..., "scheduler": ..., <extra checkpointables>, <extra state>}``, plus a
``last_checkpoint`` text file naming the newest one. Periodic checkpoints are called
``model_epoch_XXXX`` (see :meth:`Checkpointer.periodic_name`) and only the newest
``max_to_keep`` of them are kept; any other name (``model_final``, ``model_best``) is never
deleted. This mirrors detectron2/fvcore's ``Checkpointer`` interface, but every write is
atomic, every read is ``weights_only``, and weights that do not fit are an error, where
fvcore would skip them with a log line.
"""

import logging
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

import torch
from torch import nn

from ..utils.file_io import PathManager
from ..utils.modules import unwrap_model
from ..utils.run_dir import RunDir, parse_periodic_checkpoint, periodic_checkpoint_name
from .model_state import CheckpointMismatchError, load_model_state
from .serialization import (
    CheckpointError,
    atomic_torch_save,
    atomic_write_text,
    safe_torch_load,
    to_weights_only_safe,
)

logger = logging.getLogger(__name__)

_LAST = RunDir.LAST_CHECKPOINT
# ``<prefix>:`` at the start of a weights path, as in ``zoo:<name>`` (two characters at
# least, so that a Windows drive letter is not taken for one).
_PATH_PREFIX = re.compile(r"^([A-Za-z][\w+.-]+):")


class Checkpointer:
    """Writes and reads checkpoints of a model and the objects that train it.

    Args:
        model: the model (a DDP wrapper is unwrapped, so files never carry ``module.``).
        save_dir: directory of the ``.pth`` files and ``last_checkpoint``.
        optimizer: saved and loaded under ``"optimizer"`` when given.
        scheduler: saved and loaded under ``"scheduler"`` when given.
        max_to_keep: periodic checkpoints kept; None or <= 0 keeps all.
        is_main_process: False on the other ranks of a distributed run: ``save`` does
            nothing there, so only one process writes.
        **extra_checkpointables: more objects with ``state_dict`` / ``load_state_dict``
            (a grad scaler, an EMA model, a sampler), saved under their keyword name.
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str,
        optimizer: Optional[torch.optim.Optimizer] = None,
        scheduler: Optional[Any] = None,
        max_to_keep: Optional[int] = 2,
        is_main_process: bool = True,
        **extra_checkpointables: Any,
    ):
        self.model = model
        self.save_dir = save_dir
        self.max_to_keep = max_to_keep
        self.is_main_process = is_main_process
        self.checkpointables: Dict[str, Any] = {}
        named = {"optimizer": optimizer, "scheduler": scheduler, **extra_checkpointables}
        for name, obj in named.items():
            if obj is None:
                continue
            if name == "model":
                raise ValueError("'model' is reserved for the model's own weights")
            if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
                raise TypeError(f"checkpointable '{name}' needs state_dict/load_state_dict")
            self.checkpointables[name] = obj

    @staticmethod
    def periodic_name(epoch: int) -> str:
        """Name of the periodic checkpoint after ``epoch`` epochs (subject to pruning)."""
        return periodic_checkpoint_name(epoch)

    def save(self, name: str, *, tag_last: bool = True, **extra_state: Any) -> Optional[str]:
        """Write ``save_dir/<name>.pth`` atomically; a no-op unless on the main process.

        Args:
            name: file name without ``.pth``.
            tag_last: record the file in ``last_checkpoint`` (what ``resume`` loads). Pass
                False for files that do not hold the full training state.
            **extra_state: more entries, e.g. ``epoch``, ``iteration``, ``rng`` (see
                :func:`capture_rng_state`), ``sampler``. Tensors, numbers, strings and
                containers only (NumPy values are converted to tensors).

        Returns:
            The written path, or None on non-main processes.
        """
        if not self.is_main_process:
            return None
        if name.endswith(".pth"):
            name = name[: -len(".pth")]
        if not name or os.sep in name or name == _LAST:
            raise ValueError(f"invalid checkpoint name '{name}'")
        clash = sorted(set(extra_state) & (set(self.checkpointables) | {"model"}))
        if clash:
            raise ValueError(f"extra state keys {clash} clash with checkpointable names")
        data: Dict[str, Any] = {"model": unwrap_model(self.model).state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(extra_state)
        data = to_weights_only_safe(data)
        path = os.path.join(self.save_dir, f"{name}.pth")
        try:
            atomic_torch_save(data, path)
        except OSError as e:  # disk full, quota, permissions: the old files are untouched
            previous = self.get_checkpoint_file() or "none yet"
            raise CheckpointError(
                f"Could not write checkpoint {path}: {e.strerror or e}. Nothing was "
                f"overwritten: the last complete checkpoint ({previous}) is intact. Free "
                "space (or point OUTPUT_DIR elsewhere) and continue with --resume."
            ) from e
        logger.info("Saved checkpoint %s", path)
        if tag_last:
            atomic_write_text(os.path.join(self.save_dir, _LAST), f"{name}.pth")
        self._prune(keep=path)
        return path

    def load(
        self,
        path: str,
        checkpointables: Optional[Iterable[str]] = None,
        strict: bool = True,
        training: bool = True,
    ) -> Dict[str, Any]:
        """Load the model weights (and checkpointables) from ``path``.

        Args:
            path: a file holding ``{"model": state_dict, ...}`` or a bare state dict, or
                any path ``ride_dive.utils.file_io.PathManager`` resolves, e.g.
                ``zoo:<config name>`` for a model zoo checkpoint (downloaded and verified;
                its handler is registered by importing ``ride_dive.model_zoo``).
            checkpointables: names to restore besides the model; None = all registered
                ones found in the file, ``[]`` = weights only.
            strict: missing / unexpected / shape-mismatched model keys raise (True) or are
                named in a warning and skipped (False).
            training: the model will be trained from these weights. Pass False when it is
                only evaluated (``--eval-only``): routers a router stage would train must
                then be in the file (see :func:`load_model_state`).

        Returns:
            The file's entries that are neither the model nor a registered checkpointable
            (e.g. ``epoch``, ``rng``, ``sampler``).

        Raises:
            FileNotFoundError: no such file.
            CheckpointError: unreadable file (truncated, corrupt, unsafe pickle, no
                weights), or a checkpoint of the original RIDE / Decoupling code (the
                message gives the command converting it).
            CheckpointMismatchError: weights or optimizer/scheduler state do not fit.
        """
        path = _local_path(path)
        logger.info("Loading checkpoint from %s", path)
        try:
            checkpoint = safe_torch_load(path)
        except CheckpointError as e:
            # Files of the original code pickle their own objects (RIDE's config), which
            # weights_only refuses; say what the file is rather than "unsafe pickle".
            hint = _conversion_hint(path)
            if hint:
                raise CheckpointError(hint) from e
            raise
        model_state, rest = _split_checkpoint(checkpoint, path)
        names = list(self.checkpointables) if checkpointables is None else list(checkpointables)
        unknown = [n for n in names if n not in self.checkpointables]
        if unknown:
            raise ValueError(
                f"unknown checkpointables {unknown}; registered: {list(self.checkpointables)}"
            )
        try:
            load_model_state(self.model, model_state, strict=strict, source=path, training=training)
        except CheckpointMismatchError as e:
            hint = _conversion_hint(path, model_state)  # a bare RIDE state dict
            if hint:
                raise CheckpointError(hint) from e
            raise
        for name in names:
            if name not in rest:
                logger.warning("'%s' not found in %s; it keeps its current state", name, path)
                continue
            try:
                self.checkpointables[name].load_state_dict(rest[name])
            except Exception as e:  # noqa: BLE001 - torch raises several types here
                raise CheckpointMismatchError(
                    f"The '{name}' state in {path} does not fit the current {name}: {e}"
                ) from e
        return {k: v for k, v in rest.items() if k not in self.checkpointables}

    def has_checkpoint(self) -> bool:
        """Whether ``save_dir`` has a ``last_checkpoint`` record."""
        return os.path.isfile(os.path.join(self.save_dir, _LAST))

    def get_checkpoint_file(self) -> str:
        """Path of the newest tagged checkpoint, or ``""`` when there is none."""
        record = os.path.join(self.save_dir, _LAST)
        if not os.path.isfile(record):
            return ""
        with open(record, encoding="utf-8") as f:
            name = f.read().strip()
        return os.path.join(self.save_dir, name) if name else ""

    def get_periodic_checkpoints(self) -> List[str]:
        """Paths of the periodic checkpoints in ``save_dir``, oldest first."""
        if not os.path.isdir(self.save_dir):
            return []
        found = [
            (epoch, f)
            for f in os.listdir(self.save_dir)
            if (epoch := parse_periodic_checkpoint(f)) is not None
        ]
        return [os.path.join(self.save_dir, f) for _, f in sorted(found)]

    def resume_or_load(
        self, path: str, resume: bool = True, strict: bool = True, training: bool = True
    ) -> Dict:
        """Resume the whole training state, or start from ``path``'s weights.

        With ``resume`` and a ``last_checkpoint`` record, everything is loaded from the
        recorded file; if that file is unreadable (e.g. truncated by a crash), a warning is
        logged and the newest readable periodic checkpoint is used instead. Otherwise only
        the model weights are loaded from ``path`` (when given), for training or, with
        ``training=False``, for evaluation only (see :meth:`load`).

        Returns:
            The extra state of the resumed checkpoint (``epoch``, ``rng``, ...), or ``{}``
            when not resuming, so that a fresh run never inherits another run's epoch.

        Raises:
            CheckpointError: resuming, but no checkpoint in ``save_dir`` can be read.
        """
        if resume and self.has_checkpoint():
            last = self.get_checkpoint_file()
            older = [
                p
                for p in reversed(self.get_periodic_checkpoints())
                if os.path.abspath(p) != os.path.abspath(last)
            ]
            failures = []
            for candidate in [last] + older:
                try:
                    state = self.load(candidate, strict=strict)
                except (CheckpointError, FileNotFoundError) as e:
                    logger.warning("Cannot resume from %s: %s", candidate, e)
                    failures.append(candidate)
                    continue
                if failures:
                    logger.warning(
                        "Resumed from %s because %s could not be read; training repeats "
                        "the epochs in between.",
                        candidate,
                        ", ".join(failures),
                    )
                return state
            raise CheckpointError(
                f"Cannot resume from {self.save_dir}: none of its checkpoints could be read "
                f"({', '.join(failures)}). Remove the directory's last_checkpoint file to "
                "start afresh."
            )
        if path:
            self.load(path, checkpointables=[], strict=strict, training=training)
        return {}

    def _prune(self, keep: str) -> None:
        if not self.max_to_keep or self.max_to_keep <= 0:
            return
        periodic = self.get_periodic_checkpoints()
        protected = {os.path.abspath(keep), os.path.abspath(self.get_checkpoint_file() or keep)}
        excess = len(periodic) - self.max_to_keep
        for old in periodic:
            if excess <= 0:
                break
            if os.path.abspath(old) in protected:
                continue
            os.remove(old)
            excess -= 1
            logger.info("Removed old checkpoint %s", old)


def _local_path(path: str) -> str:
    """``path`` as a local file: a prefixed path (``zoo:<name>``) goes to the handler
    registered for its prefix (downloaded and verified there); a plain one is unchanged."""
    local = PathManager.get_local_path(path)
    prefix = _PATH_PREFIX.match(path)
    if local == path and prefix and not os.path.isfile(path):
        # No handler took the path: say why, rather than "file not found" alone.
        raise FileNotFoundError(
            f"Checkpoint file not found: {path}. No path handler is registered for the "
            f"prefix '{prefix.group(1)}:'; zoo: weights are resolved once ride_dive.model_zoo "
            "is imported (ride_dive.engine and the tools import it)."
        )
    return local


def _conversion_hint(path: str, obj: Any = None) -> str:
    """The message for a file of the original RIDE / Decoupling code (with the command that
    converts it), or ``""`` for any other file."""
    from .importers import conversion_hint  # imports the models: only when needed

    return conversion_hint(path, obj) or ""


def _split_checkpoint(checkpoint: Any, path: str):
    """Return ``(model_state_dict, other_entries)`` of a loaded file."""
    if isinstance(checkpoint, Mapping):
        if isinstance(checkpoint.get("model"), Mapping):
            return checkpoint["model"], {k: v for k, v in checkpoint.items() if k != "model"}
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            return checkpoint, {}
        keys = ", ".join(map(str, list(checkpoint)[:10]))
        detail = f"a dict with keys [{keys}]"
    else:
        detail = f"a {type(checkpoint).__name__}"
    hint = _conversion_hint(path, checkpoint)
    if hint:
        raise CheckpointError(hint)
    raise CheckpointError(
        f"Checkpoint '{path}' holds {detail}, not model weights: expected a state dict or "
        "{'model': state_dict, ...}. Give MODEL.WEIGHTS a ride_dive checkpoint (e.g. the "
        "model_final.pth of a run)."
    )
