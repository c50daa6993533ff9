"""Analyses of trained models: DiVE's virtual-example distribution of a teacher and the
choice of the distillation temperature from it (docs/METHODS.md 6)."""

from .plots import plot_virtual_examples
from .virtual_examples import (
    TEMPERATURES,
    choose_temperature,
    format_virtual_example_table,
    pick_temperature,
    shot_group_means,
    table_from_distributions,
    teacher_logits_on,
    teacher_virtual_examples,
    training_set_distributions,
    virtual_example_distribution,
    virtual_example_table,
)

__all__ = [
    "TEMPERATURES",
    "choose_temperature",
    "format_virtual_example_table",
    "pick_temperature",
    "plot_virtual_examples",
    "shot_group_means",
    "table_from_distributions",
    "teacher_logits_on",
    "teacher_virtual_examples",
    "training_set_distributions",
    "virtual_example_distribution",
    "virtual_example_table",
]
