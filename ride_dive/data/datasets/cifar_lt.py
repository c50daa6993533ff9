"""CIFAR-10-LT and CIFAR-100-LT from the official python pickles (docs/METHODS.md section 1)."""

import os
from typing import List, Sequence, Tuple

import numpy as np
import torch

from ...config import configurable
from ..errors import DatasetError
from ..registry import DATASET_REGISTRY
from .base import DatasetSplits, InMemoryImageDataset, assemble_lt_splits
from .lt_generator import make_lt_split
from .safe_pickle import safe_pickle_load

__all__ = ["CIFAR10LT", "CIFAR100LT", "read_cifar_batches"]

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_PIXELS = 3 * 32 * 32


def _how_to_get(archive: str, folder: str) -> str:
    return (
        f"Download the python version ({archive}) from {CIFAR_URL} and untar it into "
        f"DATASETS.ROOT so that {folder} holds the batch files."
    )


def _check_batch(batch, path: str, label_key: bytes, how: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one unpickled batch and return its (data, labels) arrays."""

    def fail(problem: str) -> DatasetError:
        return DatasetError(f"{path} is not an official CIFAR python batch: {problem}. {how}")

    if not isinstance(batch, dict):
        raise fail(f"expected a dict, found {type(batch).__name__}")
    for key in (b"data", label_key):
        if key not in batch:
            found = ", ".join(repr(k) for k in batch)
            raise fail(f"key {key!r} is missing (keys found: {found})")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise fail("b'data' must be a 2-D uint8 array")
    if data.shape[1] != _PIXELS:
        raise fail(f"b'data' rows must hold {_PIXELS} bytes (3x32x32), found {data.shape[1]}")
    raw = batch[label_key]
    is_int = (int, np.integer)
    if not isinstance(raw, (list, np.ndarray)) or not all(isinstance(v, is_int) for v in raw):
        raise fail(f"{label_key!r} must be a list of ints")
    labels = np.asarray(raw, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise fail(f"{len(labels)} labels for {data.shape[0]} images")
    return data, labels


def read_cifar_batches(
    folder: str, files: Sequence[str], label_key: bytes, num_classes: int, how: str
) -> Tuple[np.ndarray, np.ndarray]:
    """Read and concatenate CIFAR batch pickles safely.

    Args:
        folder: directory holding the batch files.
        files: batch file names in order.
        label_key: b"labels" (CIFAR-10) or b"fine_labels" (CIFAR-100).
        num_classes: labels must lie in ``[0, num_classes)``.
        how: sentence on how to obtain the data, appended to every error.

    Returns:
        ``(images, labels)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``.
    """
    datas, labels = [], []
    for name in files:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"CIFAR batch file not found: {path}. {how}")
        batch = safe_pickle_load(path, "an official CIFAR python batch", how)
        data, lab = _check_batch(batch, path, label_key, how)
        if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
            raise DatasetError(
                f"{path}: labels must lie in [0, {num_classes}) but range from {lab.min()} "
                f"to {lab.max()}; is this the right CIFAR variant? {how}"
            )
        datas.append(data)
        labels.append(lab)
    images = np.concatenate(datas).reshape(-1, 3, 32, 32)
    return images, np.concatenate(labels)


class _CIFARLT(DatasetSplits):
    """Shared reader and generator; subclasses name the files and statistics."""

    folder = ""
    archive = ""
    train_files: Sequence[str] = ()
    test_files: Sequence[str] = ()
    label_key = b""
    classes = 0
    default_n_max = 0
    mean: Sequence[float] = ()
    std: Sequence[float] = ()

    @configurable
    def __init__(
        self,
        root: str,
        imbalance_factor: float = 100.0,
        max_per_class: int = 0,
        seed: int = 0,
        val_source: str = "none",
        val_per_class: int = 0,
    ):
        """Read the pickles under ``root`` and build the LT train / val / test splits.

        Args:
            root: DATASETS.ROOT, the directory the official archive was untarred into.
            imbalance_factor: n_max / n_min of the LT training set.
            max_per_class: images of the head class; 0 = the standard 5000 / 500.
            seed: LT generator seed (DATASETS.IMBALANCE_SEED).
            val_source: "none", "train_remainder" or "test".
            val_per_class: images per class in the validation split.
        """
        folder = os.path.join(root, self.folder)
        how = _how_to_get(self.archive, folder)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{type(self).__name__}: directory not found: {folder}. {how}")
        train_x, train_y = read_cifar_batches(
            folder, self.train_files, self.label_key, self.classes, how
        )
        test_x, test_y = read_cifar_batches(
            folder, self.test_files, self.label_key, self.classes, how
        )
        names = self._class_names(folder, how)
        full_train = InMemoryImageDataset(
            torch.from_numpy(train_x),
            torch.from_numpy(train_y),
            self.classes,
            names,
            self.mean,
            self.std,
        )
        full_test = InMemoryImageDataset(
            torch.from_numpy(test_x),
            torch.from_numpy(test_y),
            self.classes,
            names,
            self.mean,
            self.std,
        )
        split = make_lt_split(
            train_y,
            test_y,
            self.classes,
            max_per_class or self.default_n_max,
            imbalance_factor,
            seed,
            val_source,
            val_per_class,
        )
        super().__init__(**assemble_lt_splits(full_train, full_test, split))

    @classmethod
    def from_config(cls, cfg) -> dict:
        d = cfg.DATASETS
        return dict(
            root=d.ROOT,
            imbalance_factor=d.IMBALANCE_FACTOR,
            max_per_class=d.MAX_PER_CLASS,
            seed=d.IMBALANCE_SEED,
            val_source=d.VAL_SOURCE,
            val_per_class=d.VAL_PER_CLASS,
        )

    def _class_names(self, folder: str, how: str) -> List[str]:
        return [f"class_{i}" for i in range(self.classes)]


@DATASET_REGISTRY.register()
class CIFAR10LT(_CIFARLT):
    """CIFAR-10-LT: 10 classes, n_max 5000 (12,406 / 13,996 / 20,431 images at IF 100/50/10)."""

    folder = "cifar-10-batches-py"
    archive = "cifar-10-python.tar.gz"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    label_key = b"labels"
    classes = 10
    default_n_max = 5000
    # The statistics the LDAM/RIDE/DiVE recipes normalise with (std as they publish it).
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2023, 0.1994, 0.2010)

    def _class_names(self, folder: str, how: str) -> List[str]:
        return [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]


@DATASET_REGISTRY.register()
class CIFAR100LT(_CIFARLT):
    """CIFAR-100-LT: 100 classes, n_max 500 (10,847 / 12,608 / 19,573 images at IF 100/50/10)."""

    folder = "cifar-100-python"
    archive = "cifar-100-python.tar.gz"
    train_files = ("train",)
    test_files = ("test",)
    label_key = b"fine_labels"
    classes = 100
    default_n_max = 500
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)

    def _class_names(self, folder: str, how: str) -> List[str]:
        # The names live in the optional 'meta' file; without it, fall back to indices.
        path = os.path.join(folder, "meta")
        if not os.path.isfile(path):
            return super()._class_names(folder, how)
        meta = safe_pickle_load(path, "the CIFAR-100 meta file", how)
        names = meta.get(b"fine_label_names") if isinstance(meta, dict) else None
        if not isinstance(names, list) or len(names) != self.classes:
            raise DatasetError(f"{path} has no list of {self.classes} b'fine_label_names'. {how}")
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
