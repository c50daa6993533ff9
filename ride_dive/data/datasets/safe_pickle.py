"""A pickle loader that can only rebuild plain containers and NumPy arrays.

The CIFAR archives ship as pickles, and an ordinary ``pickle.load`` runs whatever callable a
file names. This loader refuses every global outside a short allow-list, so a tampered or
foreign file fails with an error instead of executing code.
"""

import importlib
import pickle
from typing import Any, Callable, Dict, Tuple

import numpy as np

from ..errors import DatasetError

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "safe_pickle_load"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


def _numpy_reconstruct() -> Callable:
    # NumPy 2 moved the module to numpy._core; importing numpy.core there only warns.
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise ImportError("NumPy provides no multiarray._reconstruct")


def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    reconstruct = _numpy_reconstruct()
    allowed: Dict[Tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    # Python 2 pickles (the official CIFAR files) name the builtins module "__builtin__".
    for module in ("builtins", "__builtin__"):
        for obj in (dict, list, str, bytes, int):
            allowed[(module, obj.__name__)] = obj
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns allow-listed globals."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        """Return the allow-listed object for ``module.name`` or raise ``UnsafePickleError``."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{module}.{name}") from None


def safe_pickle_load(path: str, what: str = "a pickle", how_to_get: str = "") -> Any:
    """Load a pickle with ``encoding='bytes'``, allowing only containers and NumPy arrays.

    Args:
        path: the file to read.
        what: a short description of the expected content, used in error messages.
        how_to_get: a sentence on where to obtain the proper file, appended to errors.

    Raises:
        DatasetError: the file is not a pickle, is truncated, or names a forbidden global
            (nothing it names is ever called).
    """
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding="bytes").load()
        except UnsafePickleError as e:
            raise DatasetError(
                f"Refusing to load {path}: it is not {what}, because it asks to call '{e}', "
                f"which is outside the allowed set (plain containers and NumPy arrays), and "
                f"pickles can run arbitrary code. {how_to_get}"
            ) from None
        except Exception as e:  # any other failure means a damaged or foreign file
            raise DatasetError(
                f"Cannot read {path} as {what} ({type(e).__name__}: {e}). {how_to_get}"
            ) from None
