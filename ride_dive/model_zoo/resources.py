"""Files the model zoo ships inside the package: the configs and the manifest.

In the source tree ``ride_dive/model_zoo/configs`` and ``ride_dive/model_zoo/manifest.json``
are symbolic links to the top-level ``configs/`` and ``model_zoo/manifest.json``; a wheel
carries copies (``package_data`` in setup.py). Either way they are found through
``importlib.resources``, so the zoo works from a pip-installed package without the
repository.
"""

import os
from importlib import resources
from typing import List

from ..config import ConfigError

__all__ = ["configs_root", "config_path", "manifest_path", "list_config_names"]


def _package_dir() -> str:
    # ``files`` of a regular package is a real directory (wheels and editable installs).
    return str(resources.files("ride_dive.model_zoo"))


def configs_root() -> str:
    """Directory of the packaged configs (the repository's ``configs/``)."""
    return os.path.join(_package_dir(), "configs")


def manifest_path() -> str:
    """Path of the packaged ``manifest.json``."""
    return os.path.join(_package_dir(), "manifest.json")


def list_config_names() -> List[str]:
    """Every packaged config, as paths relative to ``configs/`` (sorted)."""
    root = configs_root()
    names = []
    for directory, _, files in os.walk(root):
        for f in files:
            if f.endswith(".yaml"):
                rel = os.path.relpath(os.path.join(directory, f), root)
                names.append(rel.replace(os.sep, "/"))
    return sorted(names)


def config_path(name: str) -> str:
    """Absolute path of the packaged config ``name`` (relative to ``configs/``).

    Raises:
        ConfigError: no such packaged config; the message lists close names.
    """
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise ConfigError(f"Model zoo config names are relative to configs/, got '{name}'")
    path = os.path.join(configs_root(), *name.split("/"))
    if os.path.isfile(path):
        return path
    import difflib

    close = difflib.get_close_matches(name, list_config_names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"No packaged config '{name}' under {configs_root()}.{hint}")
