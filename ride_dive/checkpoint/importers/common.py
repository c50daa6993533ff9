"""Pieces shared by the importers: what a parsed foreign file holds, and small key utilities."""

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from .foreign_pickle import foreign_name

__all__ = [
    "Parsed",
    "describe",
    "fill_bn_counters",
    "is_state_dict",
    "plain_value",
    "prefixed",
    "indices",
    "packaged_config",
]


@dataclass
class Parsed:
    """A foreign checkpoint reduced to what conversion needs.

    Attributes:
        weights: the model weights, wrapper prefixes (``module.``, ``backbone.``) removed;
            for a two-network file (Decoupling) one entry per network.
        num_classes: classes of the file's classifier, None if it has none.
        info: facts about the file recorded in the output's ``meta`` (plain values only).
        notes: what was skipped or assumed, and why (printed and recorded).
    """

    weights: Dict[str, Mapping[str, torch.Tensor]]
    num_classes: Optional[int]
    info: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def is_state_dict(obj: Any) -> bool:
    """A non-empty mapping from names to tensors."""
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def describe(obj: Any) -> str:
    """``a dict with keys [...]`` (at most ten shown) or ``a <type>``, for messages."""
    if isinstance(obj, Mapping):
        keys = [str(k) for k in list(obj)[:10]]
        more = f" ... and {len(obj) - 10} more" if len(obj) > 10 else ""
        return f"a dict with keys [{', '.join(keys)}{more}]"
    if foreign_name(obj):  # e.g. a whole pickled model instead of its weights
        return f"a pickled {foreign_name(obj)} object, not a dict of weights"
    return f"a {type(obj).__name__}"


def plain_value(value: Any) -> Any:
    """``value`` if it is a bool/int/float/str (safe to record in ``meta``), else None."""
    return value if isinstance(value, (bool, int, float, str)) else None


def prefixed(state: Mapping[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """The entries of ``state`` whose key starts with ``prefix``, keys kept whole."""
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def indices(keys, pattern: str) -> List[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) in ``keys``."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := regex.match(k))})


def fill_bn_counters(state: Dict[str, torch.Tensor], model: nn.Module) -> List[str]:
    """Add ``num_batches_tracked = 0`` where a file predating that buffer lacks it.

    Files written before PyTorch 0.4.1 have BatchNorm statistics without the counter; it
    only matters for ``momentum=None`` training, never for evaluation. Returns the keys added.
    """
    added = []
    for key, value in model.state_dict().items():
        if key.endswith(".num_batches_tracked") and key not in state:
            if key[: -len("num_batches_tracked")] + "running_mean" in state:
                state[key] = torch.zeros_like(value)
                added.append(key)
    return added


def packaged_config(
    folder: str, names: Sequence[str], wanted: Mapping[str, Any]
) -> Optional[Tuple[str, List[str]]]:
    """The first existing ``configs/<folder>/<name>.yaml`` of ``names``, with the ``KEY VALUE``
    overrides that give it the ``wanted`` values (``{"MODEL.RIDE.NUM_EXPERTS": 3}``), as
    ``("configs/<folder>/<name>.yaml", [key, value, ...])``; None if none exists.

    Values are given as override strings (a string quoted, as ``'LinearHead'``).
    """
    from ...config import get_cfg

    # The packaged configs as data files (where model_zoo.resources finds them too); the
    # checkpoint layer sits below the model zoo and does not import its code.
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    configs_root = os.path.join(package, "model_zoo", "configs")
    for name in names:
        path = os.path.join(configs_root, folder, name + ".yaml")
        if not os.path.isfile(path):
            continue
        cfg = get_cfg()
        cfg.merge_from_file(path)
        opts: List[str] = []
        for key, value in wanted.items():
            node = cfg
            for part in key.split("."):
                node = node[part]
            if node != value:
                opts += [key, f"'{value}'" if isinstance(value, str) else str(value)]
        return f"configs/{folder}/{name}.yaml", opts
    return None
