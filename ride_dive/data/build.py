"""Entry points: datasets, training loaders and test loaders from a config."""

import copy
from typing import Optional

from torch.utils.data import Dataset

from ..config import ConfigError
from ..utils.registry import lookup
from .datasets.base import DatasetSplits, InMemoryImageDataset
from .loaders import FileTestLoader, FileTrainLoader, InMemoryTestLoader, InMemoryTrainLoader
from .registry import DATASET_REGISTRY
from .samplers import build_sampler
from .transforms import BatchAugment, build_file_transforms

__all__ = ["build_datasets", "build_train_loader", "build_test_loader"]


def build_datasets(cfg) -> DatasetSplits:
    """Build the dataset named by DATASETS.NAME (train / optional val / test and counts)."""
    builder = lookup(DATASET_REGISTRY, cfg.DATASETS.NAME, "DATASETS.NAME")
    splits = builder(cfg)
    if not isinstance(splits, DatasetSplits):
        raise TypeError(
            f"DATASET_REGISTRY entry '{cfg.DATASETS.NAME}' returned "
            f"{type(splits).__name__}, not DatasetSplits."
        )
    return splits


def _per_rank(total: int, num_replicas: int, key: str) -> int:
    per_rank = total // num_replicas
    if per_rank < 1:
        raise ConfigError(
            f"{key}={total} is smaller than the number of processes "
            f"({num_replicas}); every process needs at least one image per "
            "batch."
        )
    return per_rank


def check_channels(cfg, dataset: Dataset) -> None:
    """The dataset's image channels against MODEL.BACKBONE.IN_CHANNELS and INPUT.PIXEL_MEAN.

    Without this a mismatch (e.g. a CIFAR config pointed at Fashion-MNIST) fails with a
    traceback at the first training batch, after the data and the model were built.
    """
    if isinstance(dataset, InMemoryImageDataset):
        channels, kind = dataset.images.shape[1], f"{cfg.DATASETS.NAME} images"
    elif hasattr(dataset, "mean"):
        channels, kind = len(dataset.mean), f"{cfg.DATASETS.NAME} images (decoded as RGB)"
    else:
        return
    problems = []
    if cfg.MODEL.BACKBONE.IN_CHANNELS != channels:
        problems.append(f"MODEL.BACKBONE.IN_CHANNELS is {cfg.MODEL.BACKBONE.IN_CHANNELS}")
    if len(cfg.INPUT.PIXEL_MEAN) not in (0, channels):
        problems.append(f"INPUT.PIXEL_MEAN / PIXEL_STD have {len(cfg.INPUT.PIXEL_MEAN)} values")
    if problems:
        raise ConfigError(
            f"{kind} have {channels} channel(s), but {' and '.join(problems)}; "
            f"set them to match (or leave INPUT.PIXEL_MEAN empty for the "
            f"dataset's own statistics)."
        )


def build_train_loader(
    cfg,
    dataset: Dataset,
    seed: int,
    num_replicas: int = 1,
    rank: int = 0,
    device: Optional[str] = None,
):
    """Training batches of one rank: ``(float32 NCHW normalised images, int64 labels)``.

    The dataset's channels must match the config (``check_channels``). The loader has
    ``set_epoch(epoch)`` and ``len()`` = iterations per epoch: the per-rank
    sampler length over the per-rank batch (SOLVER.BATCH_SIZE // num_replicas), rounded
    down with DATALOADER.DROP_LAST, up otherwise.

    Args:
        cfg: the config (DATALOADER, INPUT, SOLVER.BATCH_SIZE).
        dataset: an ``InMemoryImageDataset`` (augmented batch-wise as tensors) or an
            image-file dataset with ``labels`` whose items are already transformed.
        seed: seed of the sampler and augmentation streams (an epoch depends only on
            (seed, epoch, rank)).
        num_replicas, rank: distributed layout.
        device: in-memory sets only: keep the uint8 images on this device and augment
            there (None = CPU).
    """
    check_channels(cfg, dataset)
    batch = _per_rank(cfg.SOLVER.BATCH_SIZE, num_replicas, "SOLVER.BATCH_SIZE")
    sampler = build_sampler(cfg, dataset.labels, seed, num_replicas, rank)
    drop_last = cfg.DATALOADER.DROP_LAST
    if isinstance(dataset, InMemoryImageDataset):
        augment = BatchAugment(cfg, mean=dataset.mean, std=dataset.std, train=True)
        return InMemoryTrainLoader(dataset, sampler, batch, augment, seed, drop_last, device)
    _refuse_upsampling_of_files(cfg)
    return FileTrainLoader(dataset, sampler, batch, seed, drop_last, cfg.DATALOADER.NUM_WORKERS)


def _refuse_upsampling_of_files(cfg) -> None:
    if cfg.INPUT.UPSAMPLE_SIZE > 0:
        raise ConfigError(
            f"INPUT.UPSAMPLE_SIZE {cfg.INPUT.UPSAMPLE_SIZE} resizes in-memory batches (CIFAR, "
            "Fashion-MNIST); image files are cropped to INPUT.CROP_SIZE directly: set "
            "INPUT.CROP_SIZE (and INPUT.TEST_RESIZE) instead and INPUT.UPSAMPLE_SIZE 0."
        )


def build_test_loader(
    cfg, dataset: Dataset, num_replicas: int = 1, rank: int = 0, device: Optional[str] = None
):
    """Sequential, unaugmented batches of this rank's contiguous shard.

    Shards are contiguous and never padded, so gathering the ranks' outputs in rank order
    gives every sample exactly once. The loader exposes ``dataset`` (the whole dataset) and
    ``indices`` (this rank's range). The per-rank batch is TEST.BATCH_SIZE // num_replicas.
    """
    batch = _per_rank(cfg.TEST.BATCH_SIZE, num_replicas, "TEST.BATCH_SIZE")
    if isinstance(dataset, InMemoryImageDataset):
        transform = BatchAugment(cfg, mean=dataset.mean, std=dataset.std, train=False)
        return InMemoryTestLoader(dataset, batch, transform, num_replicas, rank, device)
    _refuse_upsampling_of_files(cfg)
    return FileTestLoader(dataset, batch, num_replicas, rank, cfg.DATALOADER.NUM_WORKERS)


def unaugmented_view(cfg, dataset):
    """``dataset`` with the test-time transform (to read a training split for analysis).

    In-memory sets are augmented by the loader (``build_test_loader`` does not); image-file
    sets carry their transform, so the training split gets a shallow copy with the test
    transform instead of its random crops. The given dataset is not changed.
    """
    if isinstance(dataset, InMemoryImageDataset) or not hasattr(dataset, "transform"):
        return dataset
    view = copy.copy(dataset)
    view.transform = build_file_transforms(cfg, False, dataset.mean, dataset.std)
    return view
