"""Crash-safe writing and code-free reading of checkpoint files.

Writes go to a temporary file in the destination directory, are flushed and fsynced, and
then renamed over the target, so a reader (or a resumed run after a crash) sees either the
old file or the complete new one, never a half-written one. Reads always use
``torch.load(weights_only=True)``: a checkpoint is data, and a file that needs arbitrary
unpickling is refused before anything in it runs. To make that possible, everything saved
is first reduced to the types the weights-only unpickler accepts.
"""

import contextlib
import os
import uuid
from collections import Counter, OrderedDict
from typing import IO, Any, Callable

import numpy as np
import torch

from ..utils.file_io import file_sha256  # noqa: F401 - part of this module's API
from ..utils.pickle_scan import refusal_message, refused_globals


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read safely: truncated, corrupt or not weights."""


# Leaf types torch's weights-only unpickler rebuilds without running code.
_SAFE_LEAVES = (
    str,
    bytes,
    bytearray,
    bool,
    int,
    float,
    complex,
    type(None),
    torch.Tensor,
    torch.Size,
    torch.device,
    torch.dtype,
)


def to_weights_only_safe(obj: Any, where: str = "checkpoint") -> Any:
    """Return ``obj`` with NumPy values turned into tensors / Python numbers.

    Containers are rebuilt only where something changed, so a model ``state_dict`` keeps
    its ``_metadata`` (BatchNorm uses it to upgrade old checkpoints).

    Args:
        obj: nested dicts / lists / tuples / sets of tensors, numbers, strings, NumPy data.
        where: the key path of ``obj``, quoted in errors.

    Raises:
        TypeError: naming the key path of a value that cannot be loaded with
            ``weights_only=True`` (e.g. a function or an arbitrary object).
    """
    if isinstance(obj, _SAFE_LEAVES):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"{where}: NumPy object arrays cannot be saved safely")
        # torch has only partial support for unsigned types wider than 8 bits.
        if obj.dtype in (np.uint16, np.uint32):
            obj = obj.astype(np.int64)
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (dict, OrderedDict, Counter)):
        items = {k: to_weights_only_safe(v, f"{where}[{k!r}]") for k, v in obj.items()}
        for k in items:
            if not isinstance(k, _SAFE_LEAVES):
                raise TypeError(f"{where}: key {k!r} of type {type(k).__name__} is not allowed")
        if all(items[k] is obj[k] for k in items) and type(obj) in (dict, OrderedDict, Counter):
            return obj
        # Subclasses other than these three are not loadable; fall back to the base type.
        rebuilt = (type(obj) if type(obj) in (dict, OrderedDict, Counter) else dict)(items)
        if hasattr(obj, "_metadata") and isinstance(rebuilt, OrderedDict):
            rebuilt._metadata = obj._metadata
        return rebuilt
    if isinstance(obj, (list, tuple, set)):
        items = [to_weights_only_safe(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if type(obj) in (list, tuple, set) and all(a is b for a, b in zip(items, obj)):
            return obj
        base = list if isinstance(obj, list) else tuple if isinstance(obj, tuple) else set
        return base(items)
    raise TypeError(
        f"{where}: value of type {type(obj).__module__}.{type(obj).__qualname__} cannot be "
        "loaded with torch.load(weights_only=True); store plain tensors, numbers, strings "
        "and containers instead"
    )


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; some filesystems do not allow opening directories.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it to ``path``.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        # "xb" (not mkstemp) so the file gets the usual umask permissions, not 0600.
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write_text(path: str, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# Marks of a failed write in torch's zip writer (PyTorchStreamWriter, inline_container.cc):
# it reports a full disk or a vanished file as a RuntimeError, not an OSError.
_ZIP_WRITE_FAILURE = ("inline_container", "PytorchStreamWriter", "file write failed")


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj)`` to ``path`` atomically (see :func:`atomic_write`).

    Raises:
        OSError: the file could not be written (disk full, quota, permissions), also when
            torch's zip writer reports it as a ``RuntimeError``; ``path`` is unchanged and
            no temporary file is left.
    """

    def write(f: IO[bytes]) -> None:
        try:
            torch.save(obj, f)
        except RuntimeError as e:
            if not any(mark in str(e) for mark in _ZIP_WRITE_FAILURE):
                raise  # not a write failure: a bug, keep its traceback
            raise OSError(f"torch could not write the file ({str(e).strip()[:200]})") from e

    atomic_write(path, write)


# Sentences of torch's weights-only failure that advise loading the file unsafely (with
# ``weights_only=False`` or by allow-listing its globals): never passed on to users.
_UNSAFE_ADVICE = (
    "weights_only",
    "Weights only load failed",
    "safe_globals",
    "Check the documentation of torch.load",
    "trust",
)


def _short_reason(error: Exception) -> str:
    """The informative part of a ``torch.load`` error, without torch's unsafe advice.

    torch's weights-only failure opens with advice to retry with ``weights_only=False``
    ("will likely succeed") or to allow-list the file's globals; neither may be repeated to
    users, so every line and sentence that mentions them is dropped.
    """
    kept = []
    for line in str(error).splitlines():
        sentences = [s.strip() for s in line.replace("\t", " ").split(". ")]
        kept += [s for s in sentences if s and not any(a in s for a in _UNSAFE_ADVICE)]
    return ". ".join(kept).strip(" .")[:300]


def safe_torch_load(path: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with a clear error.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupt, not a PyTorch file, or holds
            objects that only arbitrary unpickling could rebuild (naming their globals,
            found by disassembling the pickle).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure mode means "unreadable file"
        refused = refused_globals(path)
        if refused:
            raise CheckpointError(refusal_message(path, refused)) from e
        reason = _short_reason(e)
        raise CheckpointError(
            f"Cannot load checkpoint '{path}': the file is truncated or corrupt, or it is "
            "not a ride_dive/PyTorch weights file. It was read with "
            "torch.load(weights_only=True), so nothing in the file was executed. Re-create "
            "or re-download the file, or point to another checkpoint. "
            f"Underlying error: {type(e).__name__}: {reason}"
        ) from e
