"""DiVE's virtual examples of a teacher on a run's training split, from its config.

The math (the distribution ``V_c = sum over training images of softmax(p * z / tau)_c``,
its Many / Medium / Few table and DiVE's rule of thumb for tau; docs/METHODS.md 6) lives in
``ride_dive.modeling.virtual_examples``, beside the DiVE loss that resolves
``DISTILL.TEMPERATURE: auto`` with it before training; it is re-exported here. This module
adds what needs a config: the unaugmented training loader, ``training_set_distributions``
and ``choose_temperature`` (used by ``tools/analyze_virtual_examples.py``).
"""

import logging
from typing import Dict, Iterable, Sequence

import torch

from ..data import build_test_loader, unaugmented_view
from ..modeling.virtual_examples import (
    TEMPERATURES,
    auto_temperature,
    format_virtual_example_table,
    pick_temperature,
    shot_group_means,
    table_from_distributions,
    teacher_logits_on,
    teacher_virtual_examples,
    virtual_example_distribution,
    virtual_example_table,
)
from ..utils import comm
from ..utils.env import amp_dtype

logger = logging.getLogger("ride_dive")

__all__ = [
    "TEMPERATURES",
    "choose_temperature",
    "format_virtual_example_table",
    "pick_temperature",
    "shot_group_means",
    "table_from_distributions",
    "teacher_logits_on",
    "teacher_virtual_examples",
    "training_set_distributions",
    "virtual_example_distribution",
    "virtual_example_table",
]


def _training_loader(cfg, train_dataset, device):
    """The (unaugmented) training split in TEST.BATCH_SIZE batches, this rank's shard."""
    return build_test_loader(
        cfg,
        unaugmented_view(cfg, train_dataset),
        num_replicas=comm.get_world_size(),
        rank=comm.get_rank(),
        device=device,
    )


def training_set_distributions(
    cfg,
    teacher: torch.nn.Module,
    train_dataset,
    class_counts: Sequence[int],
    device,
    temperatures: Iterable[float] = TEMPERATURES,
    powers: Iterable[float] = (1.0, 0.5),
) -> Dict:
    """The virtual-example table of ``teacher`` on the (unaugmented) training split.

    Batches of TEST.BATCH_SIZE, autocast per SOLVER.AMP, groups per TEST.MANY_THRESHOLD /
    TEST.FEW_THRESHOLD; each rank runs its shard and the sums are shared.
    """
    distributions = teacher_virtual_examples(
        teacher,
        _training_loader(cfg, train_dataset, device),
        device,
        temperatures,
        powers,
        autocast_dtype=amp_dtype(cfg),
        num_classes=len(class_counts),
    )
    return table_from_distributions(
        distributions, class_counts, cfg.TEST.MANY_THRESHOLD, cfg.TEST.FEW_THRESHOLD
    )


def choose_temperature(cfg, teacher: torch.nn.Module, train_dataset, class_counts, device) -> float:
    """``DISTILL.TEMPERATURE: auto`` from a config (see
    :func:`ride_dive.modeling.virtual_examples.auto_temperature`, which the DiVE loss runs
    before training)."""
    return auto_temperature(
        teacher,
        _training_loader(cfg, train_dataset, device),
        class_counts,
        device,
        cfg.DISTILL.POWER,
        amp_dtype(cfg),
        cfg.TEST.MANY_THRESHOLD,
        cfg.TEST.FEW_THRESHOLD,
    )
