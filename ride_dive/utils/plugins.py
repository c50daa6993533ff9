"""Importing a user's own components (a loss, a head, an evaluator, ...) before a run.

Components register themselves in a registry when their module is imported, so a method
that lives outside this package needs only that import: ``tools/train_net.py --plugin
FILE.py`` (or a dotted module name) runs it before the config is read, in every process of
the job. docs/ARCHITECTURE.md has a worked example.
"""

import hashlib
import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import List, Sequence

from ..config import ConfigError

__all__ = ["import_plugins"]


def _import_file(path: str) -> ModuleType:
    # One module name per file (and the same name on every import of it), so that a file
    # imported twice in one process registers its classes once.
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    name = f"ride_dive_plugin_{os.path.splitext(os.path.basename(path))[0]}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_plugins(plugins: Sequence[str]) -> List[ModuleType]:
    """Import each plugin: a path to a ``.py`` file, or a dotted module name.

    Raises:
        ConfigError: a file that does not exist or a module that cannot be found (an error
            raised by the plugin's own code is the plugin's, and keeps its traceback).
    """
    modules = []
    for plugin in plugins:
        if plugin.endswith(".py"):
            if not os.path.isfile(plugin):
                raise ConfigError(f"--plugin {plugin}: no such file")
            modules.append(_import_file(plugin))
            continue
        try:
            modules.append(importlib.import_module(plugin))
        except ModuleNotFoundError as e:
            if e.name and plugin.startswith(e.name):
                raise ConfigError(
                    f"--plugin {plugin}: no module named '{e.name}' (give a "
                    "path to a .py file, or a module on the Python path)"
                ) from None
            raise
    return modules
