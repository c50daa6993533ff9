"""Image-file datasets described by list files: ImageNet-LT, Places-LT, iNaturalist 2018."""
import os
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ...config import configurable
from ..registry import DATASET_REGISTRY
from .base import DatasetSplits, class_counts_of

__all__ = ["ListFileDataset", "ImageNetLT", "PlacesLT", "INaturalist2018"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ListFileDataset(Dataset):
    """Images named in a list file, one ``relative/path label`` per line.

    Paths are stored in one NumPy byte array rather than a list of Python strings, so that
    forked loader workers do not touch (and copy) millions of reference counts.

    Attributes:
        labels: int64 tensor of the labels in file order.
        num_classes: labels lie in ``[0, num_classes)``.
        mean, std: per-channel statistics used by the transforms (0..1 scale).
    """

    def __init__(
        self,
        root: str,
        list_file: str,
        transform: Optional[Callable] = None,
        num_classes: int = 1000,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        """Parse ``list_file``; images are opened lazily.

        Args:
            root: directory the paths in the list file are relative to.
            list_file: the list file.
            transform: applied to the RGB PIL image; None returns the PIL image.
            num_classes: number of classes; a label outside ``[0, num_classes)`` is an error.
            mean, std: dataset statistics, kept for building transforms.

        Raises:
            FileNotFoundError: the list file does not exist.
            ValueError: a malformed line, non-integer label or label out of range, with
                ``file:line``.
        """
        if not os.path.isfile(list_file):
            raise FileNotFoundError(f"List file not found: {list_file}")
        paths, labels, lines = [], [], []
        with open(list_file, "r", encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                text = line.strip()
                if not text:
                    continue
                parts = text.rsplit(None, 1)
                if len(parts) != 2:
                    raise ValueError(
                        f"{list_file}:{number}: expected 'relative/path label', got '{text}'."
                    )
                try:
                    label = int(parts[1])
                except ValueError:
                    raise ValueError(
                        f"{list_file}:{number}: label '{parts[1]}' is not an integer."
                    ) from None
                if not 0 <= label < num_classes:
                    raise ValueError(
                        f"{list_file}:{number}: label {label} is out of range [0, {num_classes})."
                    )
                paths.append(parts[0].encode("utf-8"))
                labels.append(label)
                lines.append(number)
        self.root = root
        self.list_file = list_file
        self.transform = transform
        self.num_classes = int(num_classes)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self._paths = np.array(paths, dtype=np.bytes_)
        self._lines = np.array(lines, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, index: int) -> str:
        """Full path of image ``index``."""
        return os.path.join(self.root, self._paths[index].decode("utf-8"))

    def __getitem__(self, index: int) -> Tuple[object, int]:
        path = self.path(index)
        try:
            with open(path, "rb") as f:
                image = Image.open(f).convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Image not found: {path} (listed at {self.list_file}:{self._lines[index]}); "
                f"check DATASETS.ROOT ({self.root}) and that the images were extracted there."
            ) from None
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


class _ListFileLT(DatasetSplits):
    """Builds train / val / test ``ListFileDataset``s from a dataset's standard list files."""

    classes = 0
    lists: Tuple[str, str, str] = ("", "", "")  # train, val ("" = none), test
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    how_to_get = ""

    @configurable
    def __init__(
        self,
        root: str,
        train_list: str = "",
        val_list: str = "",
        test_list: str = "",
        train_transform: Optional[Callable] = None,
        test_transform: Optional[Callable] = None,
    ):
        """Parse the list files under ``root``.

        Args:
            root: DATASETS.ROOT; list files and image paths are relative to it.
            train_list, val_list, test_list: list file names; "" = the standard names.
            train_transform, test_transform: PIL-image transforms (see ``transforms.py``).
        """
        names = [given or default for given, default in zip(
            (train_list, val_list, test_list), self.lists)]
        for name in (n for n in names if n):
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{type(self).__name__}: list file not found: {path}. {self.how_to_get} "
                    f"Set DATASETS.ROOT to the folder holding the lists and images, or name "
                    f"other lists with DATASETS.TRAIN_LIST / VAL_LIST / TEST_LIST."
                )

        def make(name: str, transform) -> Optional[ListFileDataset]:
            if not name:
                return None
            return ListFileDataset(root, os.path.join(root, name), transform, self.classes,
                                   self.mean, self.std)

        train = make(names[0], train_transform)
        super().__init__(
            train=train,
            val=make(names[1], test_transform),
            test=make(names[2], test_transform),
            class_counts=class_counts_of(train.labels, self.classes),
            num_classes=self.classes,
        )

    @classmethod
    def from_config(cls, cfg) -> dict:
        from ..transforms import build_file_transforms

        d = cfg.DATASETS
        return dict(
            root=d.ROOT, train_list=d.TRAIN_LIST, val_list=d.VAL_LIST, test_list=d.TEST_LIST,
            train_transform=build_file_transforms(cfg, True, cls.mean, cls.std),
            test_transform=build_file_transforms(cfg, False, cls.mean, cls.std),
        )


@DATASET_REGISTRY.register()
class ImageNetLT(_ListFileLT):
    """ImageNet-LT: 1000 classes; train 115,846 / val 20,000 / test 50,000 images."""

    classes = 1000
    lists = ("ImageNet_LT_train.txt", "ImageNet_LT_val.txt", "ImageNet_LT_test.txt")
    how_to_get = ("The ImageNet-LT lists come with the OLTR / Decoupling releases; the images "
                  "are ILSVRC-2012 (image-net.org), with paths like train/n01440764/x.JPEG.")


@DATASET_REGISTRY.register()
class PlacesLT(_ListFileLT):
    """Places-LT: 365 classes; train 62,500 / val 7,300 / test 36,500 images."""

    classes = 365
    lists = ("Places_LT_train.txt", "Places_LT_val.txt", "Places_LT_test.txt")
    how_to_get = ("The Places-LT lists come with the OLTR / Decoupling releases; the images "
                  "are Places365-Standard (places2.csail.mit.edu).")


@DATASET_REGISTRY.register()
class INaturalist2018(_ListFileLT):
    """iNaturalist 2018: 8142 classes; train 437,513; the official val (24,426) is the test."""

    classes = 8142
    lists = ("iNaturalist18_train.txt", "", "iNaturalist18_val.txt")
    mean = (0.466, 0.471, 0.380)
    std = (0.195, 0.194, 0.192)
    how_to_get = ("The iNaturalist18 lists come with the Decoupling / RIDE releases; the "
                  "images are the iNaturalist 2018 competition data (github.com/visipedia).")
