"""The standard long-tailed subset generator (docs/METHODS.md section 1) and validation splits.

Everything here works on label arrays and returns index arrays, so CIFAR, Fashion-MNIST and
the synthetic set share one exactly reproducible code path.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ...config import ConfigError

__all__ = [
    "LTSplitIndices",
    "lt_counts",
    "select_lt_indices",
    "val_from_train_remainder",
    "val_from_test",
    "make_lt_split",
]

VAL_SOURCES = ("none", "train_remainder", "test")


def lt_counts(n_max: int, num_classes: int, imbalance_factor: float) -> List[int]:
    """Images kept per class: ``n_i = int(n_max * (1 / IF) ** (i / (C - 1)))``.

    Args:
        n_max: images of class 0 (the head).
        num_classes: number of classes C.
        imbalance_factor: IF = n_max / n_min (>= 1).

    Returns:
        A list of C ints, non-increasing.
    """
    if imbalance_factor < 1:
        raise ConfigError(f"imbalance_factor must be >= 1 (n_max / n_min); got {imbalance_factor}")
    if n_max < 1 or num_classes < 1:
        raise ConfigError(f"n_max and num_classes must be >= 1; got {n_max} and {num_classes}")
    if num_classes == 1:
        return [int(n_max)]
    ratio = 1.0 / imbalance_factor
    # Same float expression as the reference generators, so int() truncates identically.
    return [int(n_max * ratio ** (i / (num_classes - 1.0))) for i in range(num_classes)]


def select_lt_indices(labels: Sequence[int], counts: Sequence[int], seed: int = 0) -> np.ndarray:
    """Indices of the long-tailed subset, class by class, as the reference code keeps them.

    A private ``RandomState(seed)`` draws the same stream as seeding NumPy's global RNG once,
    but leaves the global state untouched. For each class in label order, that class's
    indices (``np.where`` order) are shuffled and the first ``counts[c]`` kept.

    Args:
        labels: label of every image of the full (balanced) training set.
        counts: images to keep per class (see ``lt_counts``).
        seed: the generator seed (0 in every paper).

    Returns:
        int64 array of kept indices, concatenated class by class.
    """
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    kept = []
    for cls, count in enumerate(counts):
        idx = np.where(labels == cls)[0]
        if count > len(idx):
            raise ConfigError(
                f"The LT generator needs {count} images of class {cls} but the training set "
                f"has only {len(idx)}; lower DATASETS.MAX_PER_CLASS."
            )
        rng.shuffle(idx)
        kept.append(idx[:count])
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)


def val_from_train_remainder(
    labels: Sequence[int], kept: np.ndarray, per_class: int, num_classes: int, seed: int = 0
) -> np.ndarray:
    """Draw ``per_class`` images per class from the training images the generator dropped.

    Returns:
        int64 array of indices into the full training set, class by class.
    """
    labels = np.asarray(labels)
    unused = np.ones(len(labels), dtype=bool)
    unused[kept] = False
    rng = np.random.RandomState(seed)
    picked = []
    for cls in range(num_classes):
        idx = np.where(unused & (labels == cls))[0]
        if len(idx) < per_class:
            raise ConfigError(
                f"DATASETS.VAL_SOURCE='train_remainder' needs {per_class} unused training "
                f"images of class {cls} but only {len(idx)} are left after the LT subset; "
                f"lower DATASETS.VAL_PER_CLASS or DATASETS.MAX_PER_CLASS, or use "
                f"DATASETS.VAL_SOURCE='test'."
            )
        rng.shuffle(idx)
        picked.append(idx[:per_class])
    return np.concatenate(picked).astype(np.int64)


def val_from_test(
    test_labels: Sequence[int], per_class: int, num_classes: int, seed: int = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """Move ``per_class`` random test images per class into a validation split.

    Returns:
        ``(val, rest)``: val indices class by class, and the remaining test indices in
        their original file order.
    """
    test_labels = np.asarray(test_labels)
    rng = np.random.RandomState(seed)
    picked = []
    for cls in range(num_classes):
        idx = np.where(test_labels == cls)[0]
        if len(idx) <= per_class:
            raise ConfigError(
                f"DATASETS.VAL_SOURCE='test' needs more than {per_class} test images of "
                f"class {cls} (some must stay in the test split) but there are {len(idx)}; "
                f"lower DATASETS.VAL_PER_CLASS."
            )
        rng.shuffle(idx)
        picked.append(idx[:per_class])
    val = np.concatenate(picked).astype(np.int64)
    keep = np.ones(len(test_labels), dtype=bool)
    keep[val] = False
    return val, np.where(keep)[0].astype(np.int64)


@dataclass
class LTSplitIndices:
    """Index sets of one generated LT dataset.

    Attributes:
        train: indices into the full training set (generator order).
        val: indices into the set named by ``val_from``, or None.
        val_from: "train", "test" or "none".
        test: indices into the full test set, or None for the whole test set.
    """

    train: np.ndarray
    val: Optional[np.ndarray]
    val_from: str
    test: Optional[np.ndarray]


def make_lt_split(
    train_labels: Sequence[int],
    test_labels: Sequence[int],
    num_classes: int,
    n_max: int,
    imbalance_factor: float,
    seed: int = 0,
    val_source: str = "none",
    val_per_class: int = 0,
) -> LTSplitIndices:
    """Run the LT generator and build the validation split chosen by ``val_source``.

    Args:
        train_labels, test_labels: labels of the full balanced train and test sets.
        num_classes: number of classes.
        n_max: images of the head class.
        imbalance_factor: n_max / n_min.
        seed: seed of the generator and of the validation draw.
        val_source: "none", "train_remainder" or "test" (DATASETS.VAL_SOURCE).
        val_per_class: validation images per class (DATASETS.VAL_PER_CLASS).
    """
    if val_source not in VAL_SOURCES:
        raise ConfigError(f"DATASETS.VAL_SOURCE must be one of {VAL_SOURCES}; got '{val_source}'.")
    if val_source != "none" and val_per_class <= 0:
        raise ConfigError(
            f"DATASETS.VAL_SOURCE='{val_source}' needs DATASETS.VAL_PER_CLASS > 0; got "
            f"{val_per_class}."
        )
    counts = lt_counts(n_max, num_classes, imbalance_factor)
    train = select_lt_indices(train_labels, counts, seed)
    if val_source == "train_remainder":
        val = val_from_train_remainder(train_labels, train, val_per_class, num_classes, seed)
        return LTSplitIndices(train, val, "train", None)
    if val_source == "test":
        val, rest = val_from_test(test_labels, val_per_class, num_classes, seed)
        return LTSplitIndices(train, val, "test", rest)
    return LTSplitIndices(train, None, "none", None)
