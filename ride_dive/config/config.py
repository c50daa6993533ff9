"""Config objects: ``CfgNode``, ``get_cfg`` and ``@configurable`` (checks: ``checks.py``).

The config is an fvcore ``CfgNode`` (YAML files with ``_BASE_`` inheritance, ``KEY VALUE``
overrides). Two things are stricter than fvcore: an unknown key names the closest valid
keys, and a value of the wrong type names the key and the expected type.
"""

import difflib
import functools
import inspect
from typing import Any, Dict, List

from fvcore.common.config import CfgNode as _FvCfgNode

from .errors import ConfigError
from .yaml_file import load_config_file


def _all_keys(node: _FvCfgNode, prefix: str = "") -> List[str]:
    keys = []
    for k, v in node.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, _FvCfgNode):
            keys.extend(_all_keys(v, full + "."))
    return keys


def _unknown_key_error(full_key: str, root: _FvCfgNode, source: str) -> ConfigError:
    valid = _all_keys(root)
    close = difflib.get_close_matches(full_key, valid, n=3, cutoff=0.6)
    if not close:  # a typo in the leaf name under a valid section, e.g. SOLVER.BASELR
        leaf = full_key.rsplit(".", 1)[-1]
        by_leaf = {k.rsplit(".", 1)[-1]: k for k in valid}
        close = [by_leaf[m] for m in difflib.get_close_matches(leaf, list(by_leaf), n=3)]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ConfigError(f"Unknown config key '{full_key}' (from {source}).{hint}")


# Numeric keys that also accept the string "auto" (resolved at run time).
AUTO_KEYS = ("DISTILL.TEMPERATURE",)


def _auto_or_number(full_key: str, value: Any, source: str):
    """``value`` as a float, or ``"auto"``; anything else is a ConfigError."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(f"{full_key} (from {source}) must be a number or 'auto', got {value!r}")


def _kind(value: Any) -> str:
    """How a value's type is named in messages."""
    if isinstance(value, bool):
        return "a boolean (True/False)"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a section of keys"
    return "null" if value is None else f"a {type(value).__name__}"


def _checked_value(full_key: str, default: Any, value: Any, source: str) -> Any:
    """``value`` converted to the type of ``default`` where that is lossless, else an error.

    Strings are first read as Python literals, as yacs does ("(160, 180)" in a YAML file
    is a tuple; "1e-3", which PyYAML leaves a string, is a float). Ints become floats
    where the default is a float; lists and tuples are interchangeable. Anything else of
    another type is a ``ConfigError`` naming the key, the expected type and the value.
    """
    if isinstance(default, _FvCfgNode):
        raise ConfigError(
            f"{full_key} (from {source}) is a section (keys: {', '.join(default)}), not a "
            f"single value; got {value!r}"
        )
    if isinstance(value, str):
        value = _FvCfgNode._decode_cfg_value(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    is_list = isinstance(value, (list, tuple)) and isinstance(default, (list, tuple))
    if is_list:
        return _checked_elements(full_key, default, value, source)
    if type(value) is type(default) or default is None:
        return value
    hint = " (quote it to pass a string)" if isinstance(default, str) else ""
    raise ConfigError(
        f"{full_key} (from {source}) must be {_kind(default)} like its default "
        f"{default!r}, got {value!r}, which is {_kind(value)}{hint}."
    )


# What the elements of list-valued keys must be, where the default list is empty (a
# non-empty default's elements say it themselves).
LIST_ELEMENT_TYPES = {
    "MODEL.RIDE.EXPERT_WIDTHS": int,
    "INPUT.PIXEL_MEAN": float,
    "INPUT.PIXEL_STD": float,
    "TEST.EXTRA_EVALUATORS": str,
    "MODEL.BACKBONE.FREEZE_PATTERNS": str,
}


def _element_type(full_key: str, default) -> Any:
    """The scalar type every element of ``full_key``'s list must have, or None if unknown."""
    if full_key in LIST_ELEMENT_TYPES:
        return LIST_ELEMENT_TYPES[full_key]
    kinds = {type(x) for x in default}
    if len(kinds) == 1 and next(iter(kinds)) in (int, float, str, bool):
        return next(iter(kinds))
    return None


def _checked_elements(full_key: str, default, value, source: str):
    """``value`` (a list or tuple) with each element of the type the key's elements have
    (ints accepted as floats), else a ``ConfigError`` naming the first bad element."""
    element_type = _element_type(full_key, default)
    if element_type is None:
        return value
    checked = []
    for i, x in enumerate(value):
        if element_type is float and isinstance(x, int) and not isinstance(x, bool):
            x = float(x)
        if type(x) is not element_type:
            plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
            raise ConfigError(
                f"{full_key} (from {source}) must be a list of {plural[element_type]} "
                f"like its default {default!r}; element {i} of {value!r} is {x!r}, which is "
                f"{_kind(x)}."
            )
        checked.append(x)
    return type(value)(checked)


class CfgNode(_FvCfgNode):
    """fvcore ``CfgNode`` with clear errors for unknown keys and wrong value types."""

    def _check_keys(
        self, new: Dict[str, Any], node: _FvCfgNode, prefix: str, source: str, deferred: List = None
    ):
        """Reject unknown keys; turn ints into floats where the default is a float.

        Values of ``AUTO_KEYS`` are taken out of ``new`` into ``deferred`` as
        ``(node, key, value)``: yacs would reject a string where a float was (or the
        reverse), so they are set directly after the merge.
        """
        for key, value in list(new.items()):
            full = f"{prefix}{key}"
            if key not in node:
                raise _unknown_key_error(full, self, source)
            default = node[key]
            if full in AUTO_KEYS and deferred is not None:
                deferred.append((node, key, _auto_or_number(full, value, source)))
                del new[key]
            elif isinstance(value, dict) and isinstance(default, _FvCfgNode):
                self._check_keys(value, default, full + ".", source, deferred)
            else:
                new[key] = _checked_value(full, default, value, source)

    @classmethod
    def load_yaml_with_base(cls, filename: str, allow_unsafe: bool = False) -> Dict[str, Any]:
        """fvcore's hook for reading a file and its ``_BASE_`` chain, made strict
        (``yaml_file.load_config_file``: cycles, non-mappings, duplicate keys are errors).
        ``allow_unsafe`` is ignored: configs are always read with the safe loader."""
        return load_config_file(filename)

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        """Merge a YAML file (and its ``_BASE_`` chain) into this config."""
        loaded = self.load_yaml_with_base(cfg_filename)
        loaded.pop("VERSION", None)
        deferred: List = []
        self._check_keys(loaded, self, "", cfg_filename, deferred)
        self._merge_checked(type(self)(loaded), cfg_filename)
        self._set_deferred(deferred)

    def merge_from_list(self, cfg_list: List[str]) -> None:
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` overrides (values parsed as Python literals)."""
        if len(cfg_list) % 2 != 0:
            raise ConfigError(
                f"Overrides must come in KEY VALUE pairs; got an odd number: {cfg_list}"
            )
        nested: Dict[str, Any] = {}
        for key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            parts = key.split(".")
            cursor = nested
            for part in parts[:-1]:
                cursor = cursor.setdefault(part, {})
            cursor[parts[-1]] = self._decode_cfg_value(value)
        deferred: List = []
        self._check_keys(nested, self, "", "command line", deferred)
        self._merge_checked(type(self)(nested), "command line overrides")
        self._set_deferred(deferred)

    def _set_deferred(self, deferred: List) -> None:
        for node, key, value in deferred:
            if node.is_frozen():
                raise ConfigError(f"Cannot set {key}: the config is frozen")
            # Bypass the type check on purpose: AUTO_KEYS take a number or "auto".
            dict.__setitem__(node, key, value)

    def _merge_checked(self, other: "CfgNode", source: str) -> None:
        try:
            self.merge_from_other_cfg(other)
        except ValueError as e:
            raise ConfigError(f"Bad value in {source}: {e}") from None


def get_cfg() -> CfgNode:
    """Return a fresh copy of the default config (never the global object itself)."""
    from .defaults import _C

    return _C.clone()


# ---------------------------------------------------------------------------------------
# @configurable: build an object either from explicit arguments or from a cfg.
# ---------------------------------------------------------------------------------------
def _called_with_cfg(*args, **kwargs) -> bool:
    if args and isinstance(args[0], _FvCfgNode):
        return True
    return isinstance(kwargs.get("cfg"), _FvCfgNode)


def _args_from_config(from_config, *args, **kwargs) -> Dict[str, Any]:
    """Call ``from_config(cfg, ...)`` and merge the explicit keyword overrides into it."""
    params = inspect.signature(from_config).parameters
    supports_extra = any(p.kind == p.VAR_KEYWORD for p in params.values())
    if supports_extra:
        return from_config(*args, **kwargs)
    extra = {k: kwargs.pop(k) for k in list(kwargs) if k not in params}
    built = from_config(*args, **kwargs)
    built.update(extra)
    return built


def configurable(init_func=None, *, from_config=None):
    """Let a class ``__init__`` (or a function) also accept a cfg as its first argument.

    On a class: decorate ``__init__`` and define ``@classmethod from_config(cls, cfg, ...)``
    returning the ``__init__`` keyword arguments. ``Cls(cfg, **overrides)`` then builds
    from the config, and ``Cls(a=..., b=...)`` builds without one (tests use that).
    On a function: ``@configurable(from_config=fn)``.
    """
    if init_func is not None:  # used as @configurable on __init__

        @functools.wraps(init_func)
        def wrapped_init(self, *args, **kwargs):
            if _called_with_cfg(*args, **kwargs):
                from_cfg = getattr(type(self), "from_config", None)
                if from_cfg is None:
                    raise TypeError(f"{type(self).__name__} has no from_config classmethod")
                init_func(self, **_args_from_config(from_cfg, *args, **kwargs))
            else:
                init_func(self, *args, **kwargs)

        return wrapped_init

    def decorator(func):
        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            if _called_with_cfg(*args, **kwargs):
                return func(**_args_from_config(from_config, *args, **kwargs))
            return func(*args, **kwargs)

        wrapped.from_config = from_config
        return wrapped

    return decorator
