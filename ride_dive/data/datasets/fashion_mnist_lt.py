"""Fashion-MNIST-LT: the standard LT generator on the Fashion-MNIST IDX files."""

import gzip
import os
import struct
from typing import List, Optional, Sequence

import numpy as np
import torch

from ...config import configurable
from ..errors import DatasetError
from ..registry import DATASET_REGISTRY
from .base import DatasetSplits, InMemoryImageDataset, assemble_lt_splits
from .lt_generator import make_lt_split

__all__ = [
    "FashionMNISTLT",
    "read_idx",
    "write_idx",
    "default_search_dirs",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
]

IDX_IMAGES_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
HOW_TO_GET = (
    "Install Debian's package (apt-get install dataset-fashion-mnist, which puts the files in "
    f"{SYSTEM_DIR}), or download them with torchvision.datasets.FashionMNIST(DATASETS.ROOT, "
    "download=True), or put the four IDX files (gzipped or not) in DATASETS.ROOT/fashion-mnist/."
)


def read_idx(path: str, expected_magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (``.gz`` or raw) and check its header.

    Args:
        path: the file.
        expected_magic: 2051 for image files, 2049 for label files.

    Returns:
        A writable uint8 array with the dimensions the header declares.

    Raises:
        DatasetError: wrong magic number, truncated header or a byte count that does not
            match the declared dimensions; the message names the file.
    """
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = bytearray(f.read())
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"Cannot read IDX file {path}: {e}. {HOW_TO_GET}") from None
    if len(raw) < 4:
        raise DatasetError(f"IDX file {path} is too short ({len(raw)} bytes) to hold a header.")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != expected_magic:
        kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
        raise DatasetError(
            f"IDX file {path} has magic number {magic}, expected {expected_magic} (unsigned-"
            f"byte {kind}); the file is damaged or is not a Fashion-MNIST {kind} file."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"IDX file {path} is truncated inside its {ndim}-dimension header.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DatasetError(
            f"IDX file {path} declares dimensions {dims} ({expected} bytes of data) but holds "
            f"{len(raw) - header} bytes; the file is truncated or damaged."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: str, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends with ``.gz``)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(
            f"write_idx needs a uint8 array with 1..255 dims; got {array.dtype}, {array.ndim} dims"
        )
    header = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header)
        f.write(array.tobytes())


def default_search_dirs(root: str) -> List[str]:
    """Directories searched for the IDX files, in order."""
    return [
        os.path.join(root, "fashion-mnist"),
        os.path.join(root, "FashionMNIST", "raw"),
        root,
        SYSTEM_DIR,
    ]


def _find_files(directory: str) -> Optional[List[str]]:
    """Paths of the four IDX files in ``directory`` (raw or .gz), or None if any is missing."""
    found = []
    for name in FILES:
        options = [os.path.join(directory, name + ext) for ext in ("", ".gz")]
        hits = [p for p in options if os.path.isfile(p)]
        if not hits:
            return None
        found.append(hits[0])
    return found


def _load(images_path: str, labels_path: str):
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} "
            f"holds {labels.shape[0]} labels; the files do not belong together."
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise DatasetError(f"{labels_path}: labels must lie in [0, 10); found {labels.max()}.")
    tensor = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W)
    return InMemoryImageDataset(
        tensor,
        torch.from_numpy(labels),
        len(CLASS_NAMES),
        CLASS_NAMES,
        FashionMNISTLT.mean,
        FashionMNISTLT.std,
    )


@DATASET_REGISTRY.register()
class FashionMNISTLT(DatasetSplits):
    """Fashion-MNIST-LT: 10 classes, 1x28x28 images, n_max 1000 by default (up to 6000)."""

    default_n_max = 1000
    mean = (0.2860,)
    std = (0.3530,)

    @configurable
    def __init__(
        self,
        search_dirs: Sequence[str],
        imbalance_factor: float = 100.0,
        max_per_class: int = 0,
        seed: int = 0,
        val_source: str = "none",
        val_per_class: int = 0,
    ):
        """Find the IDX files and build the LT train / val / test splits.

        Args:
            search_dirs: directories tried in order (see ``default_search_dirs``).
            imbalance_factor: n_max / n_min of the LT training set.
            max_per_class: images of the head class; 0 = 1000.
            seed: LT generator seed (DATASETS.IMBALANCE_SEED).
            val_source: "none", "train_remainder" or "test".
            val_per_class: images per class in the validation split.
        """
        paths = None
        for directory in search_dirs:
            paths = _find_files(directory)
            if paths:
                break
        if not paths:
            tried = "\n  ".join(search_dirs)
            raise FileNotFoundError(
                f"Fashion-MNIST IDX files ({', '.join(FILES)}, optionally .gz) were not found "
                f"in any of:\n  {tried}\n{HOW_TO_GET}"
            )
        full_train = _load(paths[0], paths[1])
        full_test = _load(paths[2], paths[3])
        split = make_lt_split(
            full_train.labels.numpy(),
            full_test.labels.numpy(),
            10,
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
            search_dirs=default_search_dirs(d.ROOT),
            imbalance_factor=d.IMBALANCE_FACTOR,
            max_per_class=d.MAX_PER_CLASS,
            seed=d.IMBALANCE_SEED,
            val_source=d.VAL_SOURCE,
            val_per_class=d.VAL_PER_CLASS,
        )
