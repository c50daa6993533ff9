"""Reading a config file and its ``_BASE_`` chain, with an error a user can act on for every
way the file can be wrong.

fvcore's ``load_yaml_with_base`` assumes well-formed input: a ``_BASE_`` cycle recurses
until ``RecursionError``, a base that is a directory or not a mapping (``/etc/passwd``)
fails with an ``AttributeError``, an empty file with a ``TypeError``, and a key written
twice in one mapping is silently taken from its last occurrence. ``load_config_file``
reads the same format (``_BASE_`` a path or a list of paths, relative to the file that
names it; later files and the file itself override their bases) and raises ``ConfigError``
naming the file, the line and what to do instead.
"""

import os
from typing import Any, Dict, List, Sequence

import yaml

from .errors import ConfigError

__all__ = ["BASE_KEY", "load_config_file", "read_yaml"]

BASE_KEY = "_BASE_"


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: Dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if first is not None:
                raise ConfigError(
                    f"{key_node.start_mark.name}:{line}: the key '{key}' is given twice in "
                    f"the same mapping (first on line {first}); YAML would silently keep the "
                    "last one. Delete one of them."
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_mapping(path: str, named_by: str = "") -> Dict[str, Any]:
    """The top-level mapping of one YAML file (no ``_BASE_`` resolution); an error names
    ``named_by``, the file whose ``_BASE_`` points here, if any."""
    try:
        return _read_top_level_mapping(path)
    except ConfigError as e:
        if not named_by:
            raise
        raise ConfigError(f"{e} ({path} is named by {BASE_KEY} in {named_by}.)") from None


def read_yaml(path: str) -> Any:
    """One YAML file as Python data (None when empty), read like a config file: UTF-8 with
    an optional BOM, safe types only, a key given twice in one mapping refused.

    Raises:
        ConfigError: the path is a directory or missing, the file is not UTF-8 text, is not
            valid YAML, or repeats a key (with file:line of both).
    """
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a directory, not a YAML config file.")
    if not os.path.isfile(path):
        raise ConfigError(f"Config file not found: {path}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            loaded = yaml.load(f, Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path} is not a text (UTF-8) file ({e.reason} at byte {e.start}), so it cannot "
            "be a YAML config file."
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file {path} is not valid YAML: {e}") from None
    return loaded


def _read_top_level_mapping(path: str) -> Dict[str, Any]:
    loaded = read_yaml(path)
    if loaded is None:
        raise ConfigError(
            f"{path} is empty (or only comments): a config file holds a mapping of keys such "
            "as 'SOLVER: {MAX_EPOCHS: 30}'. Add the keys it should set, or name another file."
        )
    if not isinstance(loaded, dict):
        kind = {list: "a list", str: "a single string"}.get(type(loaded), "a single value")
        raise ConfigError(
            f"{path} holds {kind} at the top level, not a mapping of config keys: it is not a "
            "ride_dive config (one looks like 'MODEL: {...}', 'SOLVER: {...}'; see configs/)."
        )
    return loaded


def _base_paths(path: str, bases: Any) -> List[str]:
    """The files named by ``_BASE_`` in ``path``, resolved relative to ``path``."""
    names = bases if isinstance(bases, list) else [bases]
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(
            f"{path}: {BASE_KEY} must be a file name or a list of file names, got {bases!r}."
        )
    resolved = []
    for name in names:
        name = os.path.expanduser(name)
        if not os.path.isabs(name):
            name = os.path.join(os.path.dirname(path), name)
        resolved.append(os.path.normpath(name))
    return resolved


def _merge_into(base: Dict[str, Any], child: Dict[str, Any], source: str, prefix: str = ""):
    """``child``'s keys into ``base`` (in place); a child's section replaces nothing but keys."""
    for key, value in child.items():
        if isinstance(value, dict) and key in base:
            if not isinstance(base[key], dict):
                raise ConfigError(
                    f"{source}: '{prefix}{key}' is a section of keys here, but its base config "
                    f"sets it to the single value {base[key]!r}; make them agree."
                )
            _merge_into(base[key], value, source, f"{prefix}{key}.")
        else:
            base[key] = value


def load_config_file(path: str, _chain: Sequence[str] = ()) -> Dict[str, Any]:
    """The merged mapping of ``path`` and its ``_BASE_`` files (``_BASE_`` removed).

    Raises:
        ConfigError: the file (or a base) is missing, a directory, not UTF-8, not YAML,
            empty, not a mapping, has a duplicate key, or the ``_BASE_`` chain has a cycle.
    """
    path = os.path.normpath(os.path.expanduser(path))
    if os.path.abspath(path) in {os.path.abspath(p) for p in _chain}:
        cycle = " -> ".join(list(_chain) + [path])
        raise ConfigError(
            f"The {BASE_KEY} chain of config files loops back on itself: {cycle}. "
            f"Remove the {BASE_KEY} entry that names a file already above it."
        )
    loaded = _read_mapping(path, named_by=_chain[-1] if _chain else "")
    if BASE_KEY not in loaded:
        return loaded
    merged: Dict[str, Any] = {}
    for base in _base_paths(path, loaded.pop(BASE_KEY)):
        if not os.path.exists(base):
            raise ConfigError(
                f"{path}: {BASE_KEY} names {base}, which does not exist (a relative "
                f"{BASE_KEY} is read from the folder of the file that names it)."
            )
        _merge_into(merged, load_config_file(base, list(_chain) + [path]), base)
    _merge_into(merged, loaded, path)
    return merged
