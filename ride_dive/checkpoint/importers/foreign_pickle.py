"""Read checkpoints written by other code bases without running anything in them.

Files of the original RIDE and classifier-balancing code hold, besides the weights, objects
of their own classes (RIDE pickles its ``parse_config.ConfigParser``, with ``pathlib`` paths
inside), NumPy scalars, and possibly anything else a tampered file wants to smuggle in. The
weights-only unpickler of ``torch.load`` refuses every such global. Here each of them is
allow-listed under its own name, but bound to an inert stand-in (a ``ForeignObject``
subclass): building one, calling it or restoring its state only records the arguments, so
``os.system`` in a file becomes an object that remembers it was asked to run a command.
Tensors and containers are still rebuilt by torch's own loader.
"""

import _compat_pickle
import os
import pickletools
import threading
from typing import Any, Dict, List, Tuple

import torch
import torch._weights_only_unpickler as _wo_unpickler

try:  # torch >= 2.6: named stand-ins in the weights-only allow-list
    from torch.serialization import get_safe_globals, get_unsafe_globals_in_checkpoint, safe_globals
except ImportError:  # older torch: the importers say so when used, the rest still works
    get_safe_globals = get_unsafe_globals_in_checkpoint = safe_globals = None

from ..serialization import CheckpointError, _short_reason

__all__ = ["ForeignObject", "foreign_name", "foreign_state", "load_foreign_checkpoint"]

# The allow-list (``safe_globals``) is process-wide.
_LOAD_LOCK = threading.Lock()


class ForeignObject:
    """Inert stand-in for a class or function named in a foreign pickle.

    The unpickler may call it (REDUCE), create it (NEWOBJ) or restore its state (BUILD);
    each only stores what it was given in ``args``, ``kwargs`` and ``state``. The global
    it replaces is the class attribute ``foreign_name``.
    """

    foreign_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args, **kwargs):  # __new__ has recorded everything
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<inert stand-in for {self.foreign_name}>"


def _stand_in(name: str) -> type:
    # One subclass per name: BUILD accepts an instance only if its exact type is
    # allow-listed, and the type then also tells which global the object replaced.
    return type("Foreign_" + name.replace(".", "_"), (ForeignObject,), {"foreign_name": name})


def foreign_name(obj: Any) -> str:
    """The global an inert stand-in replaced (``parse_config.ConfigParser``), else ''."""
    return obj.foreign_name if isinstance(obj, ForeignObject) else ""


def foreign_state(obj: Any) -> Any:
    """The state pickled for a stand-in (a plain object's ``__dict__``), else None."""
    return obj.state if isinstance(obj, ForeignObject) else None


def _legacy_globals(path: str) -> List[str]:
    """Globals named in a pre-1.6 (non-zip) ``torch.save`` file, read without unpickling.

    That format is five pickles in a row (magic number, protocol, system info, the object,
    the storage keys) followed by raw storage bytes; ``pickletools`` only disassembles.
    """
    names = set()
    with open(path, "rb") as f:
        for _ in range(5):
            for op, arg, _pos in pickletools.genops(f):
                if op.name in ("GLOBAL", "INST"):
                    names.add(_python3_name(*arg.split(" ", 1)))
    # torch's default allow-list (private; without it, defaults would only get stand-ins
    # that the loader never uses, since it looks the defaults up first).
    allowed = set(getattr(_wo_unpickler, "_get_allowed_globals", dict)())
    allowed |= {
        g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}"
        for g in get_safe_globals()
    }
    return sorted(names - allowed)


def _python3_name(module: str, name: str) -> str:
    # Protocol-2 pickles name Python 2 modules (``__builtin__``); the unpickler maps them
    # to their Python 3 names, so the stand-ins must be registered under those.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _unknown_globals(path: str) -> List[str]:
    try:
        return sorted(get_unsafe_globals_in_checkpoint(path))
    except ValueError:  # not a zip file: the legacy format, or not a checkpoint at all
        return _legacy_globals(path)


def load_foreign_checkpoint(path: str) -> Tuple[Any, List[str]]:
    """``torch.load(path, weights_only=True)`` with every unknown global made inert.

    Returns:
        ``(obj, names)``: the loaded object, in which each unknown global's uses are
        ``ForeignObject`` instances, and the sorted names of those globals.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a PyTorch file, or one even the stand-ins cannot rebuild.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    if safe_globals is None:
        raise CheckpointError(
            f"Converting '{path}' needs torch >= 2.6 (torch.serialization.safe_globals with "
            f"named stand-ins), this is torch {torch.__version__}; convert with a newer torch "
            "and use the converted file here"
        )
    try:
        names = _unknown_globals(path)
    except Exception as e:  # noqa: BLE001 - any parse failure means "not a checkpoint"
        raise _unreadable(path, e) from e
    stand_ins: Dict[str, type] = {name: _stand_in(name) for name in names}
    # torch refuses to even name globals of modules such as os or sys, stand-in or not;
    # no genuine checkpoint names them, so such a file is refused as tampered with.
    blocked = (
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        *getattr(_wo_unpickler, "_blocklisted_modules", ()),
    )
    dangerous = [n for n in names if n.split(".")[0] in blocked]
    if dangerous:
        raise CheckpointError(
            f"Refusing '{path}': it names {', '.join(dangerous)}, which no genuine RIDE or "
            "Decoupling checkpoint does (the file may have been tampered with). It was only "
            "inspected, never unpickled, so nothing in it was executed."
        )
    try:
        with _LOAD_LOCK, safe_globals([(cls, name) for name, cls in stand_ins.items()]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure mode means "unreadable file"
        raise _unreadable(path, e) from e
    return obj, names


def _unreadable(path: str, error: Exception) -> CheckpointError:
    return CheckpointError(
        f"Cannot read '{path}' as a PyTorch checkpoint: the file is truncated or corrupt, not "
        "a torch.save file, or it holds pickled content that even inert stand-ins cannot "
        "rebuild. It was read with torch.load(weights_only=True), so nothing in it was "
        f"executed. Underlying error: {type(error).__name__}: {_short_reason(error)}"
    )
