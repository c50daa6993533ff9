"""Config objects: ``get_cfg``, ``@configurable`` and ``assert_cfg``.

The config is an fvcore ``CfgNode`` (YAML files with ``_BASE_`` inheritance, ``KEY VALUE``
overrides). Two things are stricter than fvcore: an unknown key names the closest valid
keys, and a value of the wrong type names the key and the expected type.
"""
import difflib
import functools
import inspect
import os
from typing import Any, Dict, Iterable, List

import yaml
from fvcore.common.config import CfgNode as _FvCfgNode


class ConfigError(ValueError):
    """A config file or override that cannot be applied; the message says how to fix it."""


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
    raise ConfigError(
        f"{full_key} (from {source}) must be a number or 'auto', got {value!r}"
    )


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
    same = type(value) is type(default) or (
        isinstance(value, (list, tuple)) and isinstance(default, (list, tuple))
    )
    if same or default is None:
        return value
    hint = " (quote it to pass a string)" if isinstance(default, str) else ""
    raise ConfigError(
        f"{full_key} (from {source}) must be {_kind(default)} like its default "
        f"{default!r}, got {value!r}, which is {_kind(value)}{hint}."
    )


class CfgNode(_FvCfgNode):
    """fvcore ``CfgNode`` with clear errors for unknown keys and wrong value types."""

    def _check_keys(self, new: Dict[str, Any], node: _FvCfgNode, prefix: str, source: str,
                    deferred: List = None):
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

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        """Merge a YAML file (and its ``_BASE_`` chain) into this config."""
        if not os.path.isfile(cfg_filename):
            raise ConfigError(f"Config file not found: {cfg_filename}")
        try:
            loaded = self.load_yaml_with_base(cfg_filename, allow_unsafe=allow_unsafe)
        except yaml.YAMLError as e:
            raise ConfigError(f"Config file {cfg_filename} is not valid YAML: {e}") from None
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


# ---------------------------------------------------------------------------------------
# assert_cfg: reject inconsistent settings before anything is built.
# ---------------------------------------------------------------------------------------
def _require(ok: bool, message: str, problems: List[str]) -> None:
    if not ok:
        problems.append(message)


def _one_of(value: Any, allowed: Iterable[Any]) -> bool:
    return value in tuple(allowed)


def assert_cfg(cfg: CfgNode) -> None:
    """Raise ``ConfigError`` listing every inconsistent setting in ``cfg``."""
    p: List[str] = []
    s = cfg.SOLVER
    _require(s.MAX_EPOCHS > 0, f"SOLVER.MAX_EPOCHS must be > 0, got {s.MAX_EPOCHS}", p)
    _require(s.BATCH_SIZE > 0, f"SOLVER.BATCH_SIZE must be > 0, got {s.BATCH_SIZE}", p)
    _require(s.BASE_LR > 0, f"SOLVER.BASE_LR must be > 0, got {s.BASE_LR}", p)
    _require(s.REFERENCE_BATCH_SIZE >= 0,
             f"SOLVER.REFERENCE_BATCH_SIZE must be >= 0 (0 = SOLVER.BATCH_SIZE), "
             f"got {s.REFERENCE_BATCH_SIZE}", p)
    _require(s.WEIGHT_DECAY >= 0, f"SOLVER.WEIGHT_DECAY must be >= 0, got {s.WEIGHT_DECAY}", p)
    _require(
        0 <= s.WARMUP_EPOCHS < s.MAX_EPOCHS or s.WARMUP_EPOCHS == 0,
        f"SOLVER.WARMUP_EPOCHS ({s.WARMUP_EPOCHS}) must be in [0, MAX_EPOCHS={s.MAX_EPOCHS})",
        p,
    )
    _require(
        _one_of(s.LR_SCHEDULER, ("multistep", "cosine")),
        f"SOLVER.LR_SCHEDULER must be 'multistep' or 'cosine', got '{s.LR_SCHEDULER}'",
        p,
    )
    _require(
        list(s.STEPS) == sorted(s.STEPS) and all(0 < x for x in s.STEPS),
        f"SOLVER.STEPS must be increasing positive epochs, got {tuple(s.STEPS)}",
        p,
    )
    _require(s.OPTIMIZER == "SGD", f"SOLVER.OPTIMIZER must be 'SGD', got '{s.OPTIMIZER}'", p)
    _require(
        _one_of(s.AMP.DTYPE, ("bfloat16", "float16")),
        f"SOLVER.AMP.DTYPE must be 'bfloat16' or 'float16', got '{s.AMP.DTYPE}'",
        p,
    )
    _require(s.CHECKPOINT_PERIOD > 0, "SOLVER.CHECKPOINT_PERIOD must be > 0 epochs", p)
    d = cfg.DATASETS
    _require(
        d.IMBALANCE_FACTOR >= 1,
        f"DATASETS.IMBALANCE_FACTOR must be >= 1 (n_max / n_min), got {d.IMBALANCE_FACTOR}",
        p,
    )
    _require(d.MAX_PER_CLASS >= 0, "DATASETS.MAX_PER_CLASS must be >= 0", p)
    _require(
        _one_of(d.VAL_SOURCE, ("none", "train_remainder", "test")),
        f"DATASETS.VAL_SOURCE must be 'none', 'train_remainder' or 'test', got '{d.VAL_SOURCE}'",
        p,
    )
    _require(
        d.VAL_SOURCE == "none" or d.VAL_PER_CLASS > 0,
        f"DATASETS.VAL_SOURCE='{d.VAL_SOURCE}' needs DATASETS.VAL_PER_CLASS > 0",
        p,
    )
    _require(cfg.DATALOADER.SAMPLES_PER_CLASS > 0, "DATALOADER.SAMPLES_PER_CLASS must be > 0", p)
    _require(cfg.DATALOADER.NUM_WORKERS >= 0, "DATALOADER.NUM_WORKERS must be >= 0", p)
    _require(cfg.INPUT.CROP_SIZE > 0, "INPUT.CROP_SIZE must be > 0", p)
    _require(
        len(cfg.INPUT.PIXEL_MEAN) == len(cfg.INPUT.PIXEL_STD),
        "INPUT.PIXEL_MEAN and INPUT.PIXEL_STD must have the same length",
        p,
    )
    _require(cfg.TEST.EVAL_PERIOD >= 0, "TEST.EVAL_PERIOD must be >= 0", p)
    _require(cfg.TEST.ECE_BINS > 0, "TEST.ECE_BINS must be > 0", p)
    _require(isinstance(cfg.TEST.LABEL_SHIFT, bool),
             f"TEST.LABEL_SHIFT must be True or False, got {cfg.TEST.LABEL_SHIFT!r}", p)
    _require(cfg.MODEL.BACKBONE.WIDTH_MULT > 0, "MODEL.BACKBONE.WIDTH_MULT must be > 0", p)
    _require(_one_of(cfg.MODEL.BACKBONE.NORM, ("BN", "SyncBN", "GN")),
             f"MODEL.BACKBONE.NORM must be 'BN', 'SyncBN' or 'GN', got "
             f"'{cfg.MODEL.BACKBONE.NORM}'", p)
    _require(cfg.MODEL.BACKBONE.GN_GROUPS >= 1, "MODEL.BACKBONE.GN_GROUPS must be >= 1", p)
    _require(cfg.MODEL.HEAD.COSINE_SCALE > 0, "MODEL.HEAD.COSINE_SCALE must be > 0", p)
    _check_ride(cfg, p)
    _check_distill(cfg, p)
    _check_ranges(cfg, p)
    if p:
        raise ConfigError("Inconsistent config:\n  - " + "\n  - ".join(p))


def _check_distill(cfg: CfgNode, p: List[str]) -> None:
    """Ranges of the DiVE keys (the teacher's presence is checked when training starts)."""
    d = cfg.DISTILL
    _require(
        d.TEMPERATURE == "auto" or d.TEMPERATURE > 0,
        f"DISTILL.TEMPERATURE must be > 0 or 'auto', got {d.TEMPERATURE!r}",
        p,
    )
    _require(d.POWER > 0, f"DISTILL.POWER must be > 0, got {d.POWER}", p)
    _require(0.0 <= d.ALPHA <= 1.0, f"DISTILL.ALPHA must be in [0, 1], got {d.ALPHA}", p)
    _require(
        d.BASE_LOSS not in ("DiVELoss", "RIDELoss"),
        f"DISTILL.BASE_LOSS is the hard-label part of the DiVE loss (a single-head loss such "
        f"as 'BalancedSoftmaxLoss'), got '{d.BASE_LOSS}'",
        p,
    )


def _check_ride(cfg: CfgNode, p: List[str]) -> None:
    """Consistency of the multi-expert keys (MODEL.RIDE, MODEL.LOSS.RIDE, MODEL.ROUTER)."""
    m = cfg.MODEL
    is_ride = m.META_ARCHITECTURE == "RIDE"
    _require(
        m.RIDE.NUM_EXPERTS >= 1, f"MODEL.RIDE.NUM_EXPERTS must be >= 1, got {m.RIDE.NUM_EXPERTS}", p
    )
    _require(
        all(w > 0 for w in m.RIDE.EXPERT_WIDTHS),
        f"MODEL.RIDE.EXPERT_WIDTHS must be positive widths, got {list(m.RIDE.EXPERT_WIDTHS)}",
        p,
    )
    # RIDELoss takes every expert's logits, which only a multi-expert model produces (the
    # RIDE model itself checks that its loss takes them).
    _require(
        m.LOSS.NAME != "RIDELoss" or is_ride,
        f"MODEL.LOSS.NAME='RIDELoss' needs MODEL.META_ARCHITECTURE='RIDE', got "
        f"'{m.META_ARCHITECTURE}'",
        p,
    )
    r = m.LOSS.RIDE
    _require(
        r.BASE_LOSS != "RIDELoss",
        "MODEL.LOSS.RIDE.BASE_LOSS is each expert's own loss and cannot be 'RIDELoss'",
        p,
    )
    _require(
        0.0 <= r.TEMPERATURE_ALPHA <= 1.0,
        f"MODEL.LOSS.RIDE.TEMPERATURE_ALPHA must be in [0, 1], got {r.TEMPERATURE_ALPHA}",
        p,
    )
    _require(r.TEMPERATURE_BASE > 0, "MODEL.LOSS.RIDE.TEMPERATURE_BASE must be > 0", p)
    router = m.ROUTER
    _require(
        not router.TRAIN or router.ENABLED,
        "MODEL.ROUTER.TRAIN needs MODEL.ROUTER.ENABLED (there is no router to train)",
        p,
    )
    _require(
        not router.ENABLED or (is_ride and m.RIDE.NUM_EXPERTS >= 2),
        "MODEL.ROUTER.ENABLED needs MODEL.META_ARCHITECTURE='RIDE' with "
        f"MODEL.RIDE.NUM_EXPERTS >= 2 (got '{m.META_ARCHITECTURE}', {m.RIDE.NUM_EXPERTS})",
        p,
    )
    _require(router.HIDDEN_DIM >= 1, "MODEL.ROUTER.HIDDEN_DIM must be >= 1", p)
    _require(router.TOP_K >= 1, "MODEL.ROUTER.TOP_K must be >= 1", p)
    _require(router.POS_WEIGHT > 0, "MODEL.ROUTER.POS_WEIGHT must be > 0", p)
    _require(router.THRESHOLD >= 0, "MODEL.ROUTER.THRESHOLD must be >= 0", p)
    _require(
        all(t >= 0 for t in cfg.TEST.ROUTER_THRESHOLDS),
        f"TEST.ROUTER_THRESHOLDS must be >= 0, got {list(cfg.TEST.ROUTER_THRESHOLDS)}",
        p,
    )


# Metrics that TEST.BEST_METRIC may name: the higher the better (EvalHook keeps the maximum).
BEST_METRICS = ("top1", "top5", "many", "medium", "few")
ON_BAD_IMAGE_CHOICES = ("fail", "skip")


def _check_ranges(cfg: CfgNode, p: List[str]) -> None:
    """Values that would otherwise fail deep inside a run, or silently train nonsense.

    Without these checks, most surfaced as a traceback from torch or NumPy after the data
    was loaded (TEST.BEST_METRIC only after the first evaluation epoch); a negative
    SOLVER.GAMMA or INPUT.PADDING trained without complaint.
    """
    s, t, d, i, m = cfg.SOLVER, cfg.TEST, cfg.DATASETS, cfg.INPUT, cfg.MODEL
    _require(0 <= s.MOMENTUM < 1, f"SOLVER.MOMENTUM must be in [0, 1), got {s.MOMENTUM}", p)
    _require(s.GAMMA > 0, f"SOLVER.GAMMA (the LR step factor) must be > 0, got {s.GAMMA}", p)
    _require(0 <= s.WARMUP_FACTOR <= 1,
             f"SOLVER.WARMUP_FACTOR must be in [0, 1], got {s.WARMUP_FACTOR}", p)
    _require(s.CLIP_GRAD_NORM >= 0,
             f"SOLVER.CLIP_GRAD_NORM must be >= 0 (0 = off), got {s.CLIP_GRAD_NORM}", p)
    _require(t.BATCH_SIZE > 0, f"TEST.BATCH_SIZE must be > 0, got {t.BATCH_SIZE}", p)
    _require(_one_of(t.BEST_METRIC, BEST_METRICS),
             f"TEST.BEST_METRIC must be one of {', '.join(BEST_METRICS)}, got "
             f"'{t.BEST_METRIC}'", p)
    _require(t.MANY_THRESHOLD >= t.FEW_THRESHOLD >= 0,
             f"TEST.MANY_THRESHOLD ({t.MANY_THRESHOLD}) must be >= TEST.FEW_THRESHOLD "
             f"({t.FEW_THRESHOLD}) >= 0", p)
    _require(cfg.LOG_PERIOD > 0, f"LOG_PERIOD must be > 0 iterations, got {cfg.LOG_PERIOD}", p)
    _require(cfg.SEED >= 0, f"SEED must be >= 0, got {cfg.SEED}", p)
    _require(_one_of(d.ON_BAD_IMAGE, ON_BAD_IMAGE_CHOICES),
             f"DATASETS.ON_BAD_IMAGE must be 'fail' or 'skip', got '{d.ON_BAD_IMAGE}'", p)
    _require(d.IMBALANCE_SEED >= 0, f"DATASETS.IMBALANCE_SEED must be >= 0, got "
             f"{d.IMBALANCE_SEED}", p)
    syn = d.SYNTHETIC
    _require(syn.NUM_CLASSES >= 2 and syn.IMAGE_SIZE >= 1 and syn.TEST_PER_CLASS >= 1,
             "DATASETS.SYNTHETIC needs NUM_CLASSES >= 2, IMAGE_SIZE >= 1 and TEST_PER_CLASS "
             f">= 1, got {syn.NUM_CLASSES}, {syn.IMAGE_SIZE}, {syn.TEST_PER_CLASS}", p)
    _require(i.PADDING >= 0, f"INPUT.PADDING must be >= 0, got {i.PADDING}", p)
    _require(i.TEST_RESIZE > 0, f"INPUT.TEST_RESIZE must be > 0, got {i.TEST_RESIZE}", p)
    _require(i.COLOR_JITTER >= 0, f"INPUT.COLOR_JITTER must be >= 0, got {i.COLOR_JITTER}", p)
    _require(all(x > 0 for x in i.PIXEL_STD),
             f"INPUT.PIXEL_STD must be positive, got {list(i.PIXEL_STD)}", p)
    _require(m.NUM_CLASSES >= 0,
             f"MODEL.NUM_CLASSES must be >= 0 (0 = from the dataset), got {m.NUM_CLASSES}", p)
    _require(m.BACKBONE.IN_CHANNELS >= 1,
             f"MODEL.BACKBONE.IN_CHANNELS must be >= 1, got {m.BACKBONE.IN_CHANNELS}", p)
    _require(m.LOSS.DRW_EPOCH >= -1,
             f"MODEL.LOSS.DRW_EPOCH must be >= 0, or -1 for never, got {m.LOSS.DRW_EPOCH}", p)
    _require(0 <= m.LOSS.DRW_BETA < 1,
             f"MODEL.LOSS.DRW_BETA must be in [0, 1), got {m.LOSS.DRW_BETA}", p)
    _require(m.LOSS.FOCAL_GAMMA >= 0,
             f"MODEL.LOSS.FOCAL_GAMMA must be >= 0, got {m.LOSS.FOCAL_GAMMA}", p)
    _require(m.LOSS.LDAM_MAX_MARGIN > 0 and m.LOSS.LDAM_SCALE > 0,
             "MODEL.LOSS.LDAM_MAX_MARGIN and MODEL.LOSS.LDAM_SCALE must be > 0, got "
             f"{m.LOSS.LDAM_MAX_MARGIN} and {m.LOSS.LDAM_SCALE}", p)
