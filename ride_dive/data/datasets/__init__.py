"""Datasets; importing this package registers every dataset in DATASET_REGISTRY."""

from . import cifar_lt, fashion_mnist_lt, list_file, synthetic  # noqa: F401  (registration)
from .base import DatasetSplits, InMemoryImageDataset
from .cifar_lt import CIFAR10LT, CIFAR100LT
from .fashion_mnist_lt import FashionMNISTLT, read_idx, write_idx
from .list_file import ImageNetLT, INaturalist2018, ListFileDataset, PlacesLT
from .lt_generator import lt_counts, make_lt_split, select_lt_indices
from .synthetic import SyntheticLT

__all__ = [
    "DatasetSplits",
    "InMemoryImageDataset",
    "ListFileDataset",
    "CIFAR10LT",
    "CIFAR100LT",
    "FashionMNISTLT",
    "ImageNetLT",
    "PlacesLT",
    "INaturalist2018",
    "SyntheticLT",
    "lt_counts",
    "select_lt_indices",
    "make_lt_split",
    "read_idx",
    "write_idx",
]
