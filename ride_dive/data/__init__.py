"""Data: long-tailed datasets, samplers, batched augmentation and loaders.

Importing this package registers every dataset and sampler.
"""

from . import datasets, samplers  # noqa: F401  (registration)
from .build import build_datasets, build_test_loader, build_train_loader, unaugmented_view
from .datasets import DatasetSplits, InMemoryImageDataset, ListFileDataset
from .errors import BadImageError, DatasetError
from .loaders import shard_range
from .mixing import MixedBatches, mixing_enabled
from .registry import DATASET_REGISTRY, SAMPLER_REGISTRY
from .samplers import build_sampler
from .transforms import BatchAugment, build_file_transforms, model_input_size, resolve_mean_std

__all__ = [
    "MixedBatches",
    "mixing_enabled",
    "DATASET_REGISTRY",
    "SAMPLER_REGISTRY",
    "DatasetSplits",
    "InMemoryImageDataset",
    "ListFileDataset",
    "BatchAugment",
    "build_datasets",
    "build_train_loader",
    "build_test_loader",
    "build_sampler",
    "build_file_transforms",
    "model_input_size",
    "resolve_mean_std",
    "shard_range",
    "unaugmented_view",
    "DatasetError",
    "BadImageError",
]
