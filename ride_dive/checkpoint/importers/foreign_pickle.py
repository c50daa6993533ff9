"""Read checkpoints written by other code bases without running anything in them.

Files of the original RIDE and classifier-balancing code hold, besides the weights, objects
of their own classes (RIDE pickles its ``parse_config.ConfigParser``, with ``pathlib`` paths
inside), NumPy scalars, and possibly anything else a tampered file wants to smuggle in. The
weights-only unpickler of ``torch.load`` refuses every such global. Here each of them is
allow-listed under its own name, but bound to an inert stand-in (a ``ForeignObject``
subclass): building one, calling it or restoring its state only records the arguments, so
a function in a file becomes an object that remembers it was asked to run. Tensors and
containers are still rebuilt by torch's own loader. A file naming a global that runs
commands or code (``posix.system``, ``subprocess.Popen``, ``builtins.exec``, or a Python 2
spelling of one such as ``commands.Popen`` or ``__builtin__.eval``) is refused outright,
before anything is unpickled: no genuine checkpoint names them.
"""

import _compat_pickle
import os
import threading
from typing import Any, Dict, List, Tuple

import torch
import torch._weights_only_unpickler as _wo_unpickler

try:  # torch >= 2.6: named stand-ins in the weights-only allow-list
    from torch.serialization import safe_globals
except ImportError:  # older torch: the importers say so when used, the rest still works
    safe_globals = None

from ...utils.pickle_scan import is_dangerous_global, refused_globals
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


def _python3_name(name: str) -> str:
    """What a Python 2 global means in Python 3 (``commands.Popen`` -> ``subprocess.Popen``).

    torch's unpickler translates only some Python 2 names, so a file is judged by both its
    spelling and its Python 3 meaning.
    """
    module, _, attr = name.rpartition(".")
    if (module, attr) in _compat_pickle.NAME_MAPPING:
        module, attr = _compat_pickle.NAME_MAPPING[(module, attr)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{attr}"


def _dangerous(names: List[str]) -> List[str]:
    blocked = set(getattr(_wo_unpickler, "_blocklisted_modules", ()))
    found = []
    for name in names:
        meaning = _python3_name(name)
        if (
            is_dangerous_global(name)
            or is_dangerous_global(meaning)
            or name.split(".")[0] in blocked
            or meaning.split(".")[0] in blocked
        ):
            found.append(name if meaning == name else f"{name} (that is, {meaning})")
    return found


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
    # The globals torch's loader would refuse, found by disassembling the pickle (the names
    # are spelt as that loader resolves them, so the stand-ins are found under them).
    names = refused_globals(path)
    # torch refuses to even name globals of modules such as os or sys, stand-in or not;
    # no genuine checkpoint names them or code-running built-ins, in any spelling, so such
    # a file is refused as tampered with.
    dangerous = _dangerous(names)
    if dangerous:
        raise CheckpointError(
            f"Refusing '{path}': it names {', '.join(dangerous)}, which no genuine RIDE or "
            "Decoupling checkpoint does (the file may have been tampered with). It was only "
            "inspected, never unpickled, so nothing in it was executed."
        )
    stand_ins: Dict[str, type] = {name: _stand_in(name) for name in names}
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
