"""Reading a pickle's global names without unpickling it: which classes and functions a
checkpoint file would make ``torch.load`` import, the ones that are never in a checkpoint
(commands, code, file operations), and the message that refuses a file naming them."""

import contextlib
import pickletools
import zipfile
from typing import IO, Iterable, List

import torch

__all__ = ["is_dangerous_global", "pickle_globals", "refusal_message", "refused_globals"]


# Modules whose functions run commands, code or file operations. No checkpoint needs them,
# so a pickle that names one has been tampered with. Python 2 names are listed too:
# protocol-2 pickles may spell ``subprocess`` as ``commands``, ``builtins`` as
# ``__builtin__``, and torch's unpickler does not translate every such alias.
_DANGEROUS_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "commands",
        "popen2",
        "pty",
        "shutil",
        "socket",
        "importlib",
        "imp",
        "runpy",
        "ctypes",
        "multiprocessing",
        "webbrowser",
        "code",
        "codeop",
        "marshal",
        "pickle",
        "cPickle",
        "_pickle",
        "shelve",
        "signal",
    }
)
# Built-in functions that run code or reach arbitrary attributes and files (``execfile``,
# ``file``, ``reload``, ``apply`` and ``raw_input`` are their Python 2 relatives).
_DANGEROUS_BUILTINS = frozenset(
    {
        "eval",
        "exec",
        "execfile",
        "compile",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "open",
        "file",
        "input",
        "raw_input",
        "breakpoint",
        "globals",
        "locals",
        "vars",
        "reload",
        "apply",
    }
)


def is_dangerous_global(name: str) -> bool:
    """Whether the pickled global ``module.name`` is one that runs commands or code
    (``posix.system``, ``subprocess.Popen``, ``commands.getoutput``, ``builtins.eval``,
    ``__builtin__.exec`` ...), which no genuine checkpoint names."""
    module, _, attr = name.rpartition(".")
    top = module.split(".")[0]
    if top in _DANGEROUS_MODULES:
        return True
    return top in ("builtins", "__builtin__") and attr in _DANGEROUS_BUILTINS


def _torch_name(module: str, name: str) -> str:
    """``module.name`` as torch's weights-only unpickler resolves it (it maps some Python 2
    names, e.g. ``__builtin__`` -> ``builtins``, with its own table)."""
    from torch._utils import IMPORT_MAPPING, NAME_MAPPING

    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f"{module}.{name}"


_STRING_OPS = {
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
}


def _globals_in_pickle(f: IO[bytes]) -> List[str]:
    """Globals one pickle names (GLOBAL, INST, STACK_GLOBAL), read by disassembly only.

    STACK_GLOBAL takes its module and name from the stack, so the strings pushed (directly
    or from the memo) are followed.

    Raises:
        ValueError (or another error of ``pickletools``): not a complete pickle; its names
            are not reported, so that stray bytes are never read as a global's name.
    """
    names, pushed, memo = [], [None, None], {}
    for op, arg, _pos in pickletools.genops(f):
        if op.name in ("GLOBAL", "INST"):
            names.append(_torch_name(*arg.split(" ", 1)))
        elif op.name == "STACK_GLOBAL":
            module, name = pushed[-2], pushed[-1]
            if isinstance(module, str) and isinstance(name, str):
                names.append(_torch_name(module, name))
            pushed.append(None)
        elif op.name in _STRING_OPS:
            pushed.append(arg.decode("latin-1") if isinstance(arg, bytes) else arg)
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(arg))
        elif op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1]
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = pushed[-1]
        elif op.stack_after:
            pushed.append(None)
        del pushed[:-2]
    return names


def pickle_globals(path: str) -> List[str]:
    """Every global (``module.name``) the pickles of a ``torch.save`` file name, without
    unpickling anything.

    Reads the ``data.pkl`` of a zip-format file, or the pickles in a row of a legacy
    (pre-1.6) file or of a plain pickle, up to the first one that is not a complete pickle.
    Names are given as torch's loader resolves them.
    """
    found = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member == "data.pkl" or member.endswith("/data.pkl"):
                    with archive.open(member) as f, contextlib.suppress(Exception):
                        found += _globals_in_pickle(f)
        return sorted(set(found))
    with open(path, "rb") as f:
        # A legacy file is five pickles (magic number, protocol, system info, the object,
        # storage keys) followed by raw storage bytes.
        for _ in range(5):
            try:
                found += _globals_in_pickle(f)
            except Exception:  # noqa: BLE001 - the end of the pickles, or damage
                break
    return sorted(set(found))


def refused_globals(path: str, allowed: Iterable[str] = ()) -> List[str]:
    """The globals of :func:`pickle_globals` that ``torch.load(weights_only=True)`` does
    not rebuild (outside its default allow-list, the safe globals registered with torch and
    ``allowed``); [] when the file cannot be scanned."""
    try:
        names = pickle_globals(path)
    except Exception:  # noqa: BLE001 - unreadable: the caller reports the load error
        return []
    import torch._weights_only_unpickler as wo

    ok = set(getattr(wo, "_get_allowed_globals", dict)()) | set(allowed)
    get_safe = getattr(torch.serialization, "get_safe_globals", list)
    ok |= {g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}" for g in get_safe()}
    return [n for n in names if n not in ok]


def _listed(names: List[str], limit: int = 6) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def refusal_message(path: str, names: List[str]) -> str:
    """The ``CheckpointError`` text for a file refused because it pickles ``names``."""
    dangerous = [n for n in names if is_dangerous_global(n)]
    if dangerous:
        return (
            f"Refusing checkpoint '{path}': its pickle names {_listed(dangerous)}, which "
            "runs commands or code when unpickled; no checkpoint needs that, so the file "
            "has probably been tampered with. It was read with torch.load(weights_only="
            "True), which stops at such a global, so nothing in the file was executed. "
            "Delete it and get the checkpoint again from a source you trust."
        )
    return (
        f"Refusing checkpoint '{path}': it pickles objects of {_listed(names)}, which are "
        "not weights (tensors, numbers, strings and containers). It was read with "
        "torch.load(weights_only=True), which refuses them because rebuilding an arbitrary "
        "object can run code, so nothing in the file was executed. If it is a checkpoint "
        "of another code base, convert it first: tools/convert_checkpoint.py converts those "
        "of the original RIDE and classifier-balancing code, reading such objects as inert "
        "data. Otherwise re-create the file with ride_dive (model.state_dict() or a "
        "ride_dive checkpoint). Do not load a file you do not trust with full unpickling."
    )
