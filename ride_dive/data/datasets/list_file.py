"""Image-file datasets described by list files: ImageNet-LT, Places-LT, iNaturalist 2018."""

import logging
import os
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ...config import configurable
from ...config.checks import ON_BAD_IMAGE_CHOICES
from ..errors import BadImageError
from ..registry import DATASET_REGISTRY
from .base import DatasetSplits, class_counts_of
from .list_parsing import find_missing, parse_list

__all__ = ["ListFileDataset", "ImageNetLT", "PlacesLT", "INaturalist2018"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SHOWN = 5  # missing files named in a message; the rest are counted

logger = logging.getLogger(__name__)


class ListFileDataset(Dataset):
    """Images named in a list file, one ``relative/path label`` per line.

    Paths are stored in one NumPy byte array rather than a list of Python strings, so that
    forked loader workers do not touch (and copy) millions of reference counts.

    Attributes:
        labels: int64 tensor of the labels in file order.
        num_classes: labels lie in ``[0, num_classes)``.
        mean, std: per-channel statistics used by the transforms (0..1 scale).
        on_bad_image: "fail" or "skip" (``DATASETS.ON_BAD_IMAGE``), read by the loaders.
        skipped_missing: listed images left out because they do not exist ("skip").
    """

    def __init__(
        self,
        root: str,
        list_file: str,
        transform: Optional[Callable] = None,
        num_classes: int = 1000,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        on_bad_image: str = "fail",
        check_files: bool = True,
        allow_outside_root: bool = False,
    ):
        """Parse ``list_file`` and check that the images exist; images are decoded lazily.

        Args:
            root: directory the paths in the list file are relative to.
            list_file: the list file.
            transform: applied to the RGB PIL image; None returns the PIL image.
            num_classes: number of classes; a label outside ``[0, num_classes)`` is an error.
            mean, std: dataset statistics, kept for building transforms.
            on_bad_image: ``DATASETS.ON_BAD_IMAGE``. "fail": a missing image is an error
                here. "skip": missing images are left out (with a warning naming them);
                the loaders read this attribute to skip images that fail to decode.
            check_files: look for missing images now (False defers it to loading).
            allow_outside_root: ``DATASETS.ALLOW_PATHS_OUTSIDE_ROOT``; False refuses a line
                whose path is absolute (outside ``root``) or climbs out of ``root`` with
                "..", decided on the text (folders symlinked into ``root`` are inside).

        Raises:
            FileNotFoundError: the list file does not exist; or images are missing (with
                "fail", or all of them): the message gives their number and the first few
                with their ``file:line``.
            DatasetError: an empty list, a malformed line, non-integer label or label out of
                range, or a path outside ``root`` (see ``allow_outside_root``), with
                ``file:line``.
        """
        if on_bad_image not in ON_BAD_IMAGE_CHOICES:
            raise ValueError(f"on_bad_image must be 'fail' or 'skip', got '{on_bad_image}'")
        if not os.path.isfile(list_file):
            raise FileNotFoundError(f"List file not found: {list_file}")
        paths, labels, lines = parse_list(
            list_file, num_classes, None if allow_outside_root else root
        )
        self.root = root
        self.list_file = list_file
        self.transform = transform
        self.num_classes = int(num_classes)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.on_bad_image = on_bad_image
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self._paths = np.array(paths, dtype=np.bytes_)
        self._lines = np.array(lines, dtype=np.int64)
        self.skipped_missing = 0
        if check_files:
            self._handle_missing(find_missing(root, paths))

    def _handle_missing(self, missing: np.ndarray) -> None:
        """Raise about missing images, or (with "skip") drop them with a warning."""
        count = int(missing.sum())
        if count == 0:
            return
        where = np.flatnonzero(missing)
        shown = "; ".join(f"{self.path(i)} (line {self._lines[i]})" for i in where[:_SHOWN])
        more = f"; and {count - _SHOWN} more" if count > _SHOWN else ""
        total = len(missing)
        what = (
            f"{count} of the {total} images listed in {self.list_file} do not exist: {shown}{more}"
        )
        check = f"Check DATASETS.ROOT ({self.root}) and that the images were extracted there"
        if count == total:
            raise FileNotFoundError(
                f"None of the {total} images listed in {self.list_file} "
                f"exists, e.g. {shown}{more}. {check}."
            )
        if self.on_bad_image == "fail":
            raise FileNotFoundError(
                f"{what}. {check}, or set DATASETS.ON_BAD_IMAGE 'skip' to leave missing images out."
            )
        logger.warning(
            "DATASETS.ON_BAD_IMAGE=skip: leaving out the %d of the %d images listed "
            "in %s that do not exist: %s%s.",
            count,
            total,
            self.list_file,
            shown,
            more,
        )
        keep = ~missing
        self.labels = self.labels[torch.from_numpy(keep)]
        self._paths = self._paths[keep]
        self._lines = self._lines[keep]
        self.skipped_missing = count

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, index: int) -> str:
        """Full path of image ``index``."""
        return os.path.join(self.root, self._paths[index].decode("utf-8"))

    def line(self, index: int) -> str:
        """``list_file:line`` of image ``index``, for messages."""
        return f"{self.list_file}:{self._lines[index]}"

    def __getitem__(self, index: int) -> Tuple[object, int]:
        """The transformed image and its label.

        Raises:
            FileNotFoundError: the image has gone since the dataset was built.
            BadImageError: the file cannot be decoded (whatever ``on_bad_image`` says:
                skipping is the loaders' job, see ``data/bad_images.py``).
        """
        path = self.path(index)
        try:
            with open(path, "rb") as f:
                image = Image.open(f).convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Image not found: {path} (listed at {self.line(index)}); "
                f"check DATASETS.ROOT ({self.root}) and that the images were extracted there."
            ) from None
        except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError,
            # struct.error, DecompressionBombError... for damaged or foreign files
            # PIL's own text for an unknown format repeats the file object; say it plainly.
            unknown = isinstance(e, UnidentifiedImageError)
            reason = "not an image format PIL can identify" if unknown else str(e)
            detail = f"image {path} (listed at {self.line(index)}): {type(e).__name__}: {reason}"
            problem = f"cannot decode {detail}"
            error = BadImageError(
                f"Cannot decode {detail}. Replace or delete the file, or set "
                "DATASETS.ON_BAD_IMAGE 'skip' to skip images that fail to decode (they are "
                "counted and logged)."
            )
            error.problem = problem  # without the advice, for the log of skipped images
            raise error from None
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
        on_bad_image: str = "fail",
        allow_outside_root: bool = False,
    ):
        """Parse the list files under ``root``.

        Args:
            root: DATASETS.ROOT; list files and image paths are relative to it.
            train_list, val_list, test_list: list file names; "" = the standard names.
            train_transform, test_transform: PIL-image transforms (see ``transforms.py``).
            on_bad_image: DATASETS.ON_BAD_IMAGE, see ``ListFileDataset``.
            allow_outside_root: DATASETS.ALLOW_PATHS_OUTSIDE_ROOT, see ``ListFileDataset``.
        """
        names = [
            given or default
            for given, default in zip((train_list, val_list, test_list), self.lists)
        ]
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
            return ListFileDataset(
                root,
                os.path.join(root, name),
                transform,
                self.classes,
                self.mean,
                self.std,
                on_bad_image,
                allow_outside_root=allow_outside_root,
            )

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
            root=d.ROOT,
            train_list=d.TRAIN_LIST,
            val_list=d.VAL_LIST,
            test_list=d.TEST_LIST,
            train_transform=build_file_transforms(cfg, True, cls.mean, cls.std),
            test_transform=build_file_transforms(cfg, False, cls.mean, cls.std),
            on_bad_image=d.ON_BAD_IMAGE,
            allow_outside_root=d.ALLOW_PATHS_OUTSIDE_ROOT,
        )


@DATASET_REGISTRY.register()
class ImageNetLT(_ListFileLT):
    """ImageNet-LT: 1000 classes; train 115,846 / val 20,000 / test 50,000 images."""

    classes = 1000
    lists = ("ImageNet_LT_train.txt", "ImageNet_LT_val.txt", "ImageNet_LT_test.txt")
    how_to_get = (
        "The ImageNet-LT lists come with the OLTR / Decoupling releases; the images "
        "are ILSVRC-2012 (image-net.org), with paths like train/n01440764/x.JPEG."
    )


@DATASET_REGISTRY.register()
class PlacesLT(_ListFileLT):
    """Places-LT: 365 classes; train 62,500 / val 7,300 / test 36,500 images."""

    classes = 365
    lists = ("Places_LT_train.txt", "Places_LT_val.txt", "Places_LT_test.txt")
    how_to_get = (
        "The Places-LT lists come with the OLTR / Decoupling releases; the images "
        "are Places365-Standard (places2.csail.mit.edu)."
    )


@DATASET_REGISTRY.register()
class INaturalist2018(_ListFileLT):
    """iNaturalist 2018: 8142 classes; train 437,513; the official val (24,426) is the test."""

    classes = 8142
    lists = ("iNaturalist18_train.txt", "", "iNaturalist18_val.txt")
    mean = (0.466, 0.471, 0.380)
    std = (0.195, 0.194, 0.192)
    how_to_get = (
        "The iNaturalist18 lists come with the Decoupling / RIDE releases; the "
        "images are the iNaturalist 2018 competition data (github.com/visipedia)."
    )
