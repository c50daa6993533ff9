"""Batch iterators: tensor-gathering loaders for in-memory sets, DataLoader for image files.

Both train loaders make an epoch a pure function of (seed, epoch, rank): the sampler order,
the crops and the flips. Resuming at an epoch boundary therefore replays exactly.
"""

import math
import os
import random
import weakref
from functools import partial
from typing import Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from .bad_images import BadImageLog, CheckedItems, collate_checked, read_training_item
from .datasets.base import InMemoryImageDataset
from .errors import DatasetError
from .samplers import TrainingSampler, derive_seed
from .transforms import BatchAugment

__all__ = [
    "InMemoryTrainLoader",
    "InMemoryTestLoader",
    "FileTrainLoader",
    "FileTestLoader",
    "shard_range",
]

_AUGMENT_STREAM = 1  # keeps augmentation seeds apart from the sampler's (seed, epoch) stream
_SAMPLE_STREAM = 2


def shard_range(n: int, num_replicas: int, rank: int) -> Tuple[int, int]:
    """Contiguous ``[start, end)`` of ``n`` items for ``rank``; shards differ by at most one."""
    return n * rank // num_replicas, n * (rank + 1) // num_replicas


def _num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)


class InMemoryTrainLoader:
    """Yields ``(float32 NCHW normalised images, int64 labels)`` batches of one rank.

    Each batch is one ``index_select`` from the uint8 tensor plus ``BatchAugment``; with a
    ``device`` the uint8 images live there, so gathering and augmenting run on it too.
    """

    def __init__(
        self,
        dataset: InMemoryImageDataset,
        sampler: TrainingSampler,
        batch_size: int,
        augment: BatchAugment,
        seed: int,
        drop_last: bool = False,
        device: Optional[torch.device] = None,
    ):
        """Keep the images where they will be augmented.

        Args:
            dataset: the in-memory training set.
            sampler: yields this rank's indices; ``set_epoch`` is forwarded to it.
            batch_size: images per batch on this rank.
            augment: a training-mode ``BatchAugment``.
            seed: augmentation seed; crops of an epoch depend on (seed, epoch, rank).
            drop_last: drop the last incomplete batch.
            device: keep the uint8 images (and augment) there; None = CPU.
        """
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.augment = augment
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self.device = torch.device(device) if device is not None else None
        self._images = dataset.images if device is None else dataset.images.to(device)
        self._labels = dataset.labels if device is None else dataset.labels.to(device)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (sampler order and augmentation) the next iteration produces."""
        self.epoch = int(epoch)
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return _num_batches(len(self.sampler), self.batch_size, self.drop_last)

    def __iter__(self):
        order = self.sampler.indices()
        if self.device is not None:
            order = order.to(self.device)
        generator = torch.Generator()
        generator.manual_seed(
            derive_seed(self.seed, self.epoch, self.sampler.rank, _AUGMENT_STREAM)
        )
        for i in range(len(self)):
            batch = order[i * self.batch_size : (i + 1) * self.batch_size]
            images = self._images.index_select(0, batch)
            yield self.augment(images, generator), self._labels.index_select(0, batch)


class InMemoryTestLoader:
    """Sequential, unaugmented batches of this rank's contiguous shard (no padding)."""

    def __init__(
        self,
        dataset: InMemoryImageDataset,
        batch_size: int,
        transform: BatchAugment,
        num_replicas: int = 1,
        rank: int = 0,
        device: Optional[torch.device] = None,
    ):
        """Select this rank's contiguous shard.

        Args:
            dataset: the in-memory evaluation set.
            batch_size: images per batch on this rank.
            transform: an evaluation-mode ``BatchAugment``.
            num_replicas, rank: distributed layout.
            device: move each batch there before the transform; None = CPU.
        """
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.transform = transform
        self.start, self.end = shard_range(len(dataset), num_replicas, rank)
        self.indices = range(self.start, self.end)
        self.device = torch.device(device) if device is not None else None

    def __len__(self) -> int:
        return _num_batches(self.end - self.start, self.batch_size, False)

    def __iter__(self):
        for lo in range(self.start, self.end, self.batch_size):
            hi = min(lo + self.batch_size, self.end)
            images = self.dataset.images[lo:hi]  # a view: no copy before the transform
            labels = self.dataset.labels[lo:hi]
            if self.device is not None:
                images, labels = images.to(self.device), labels.to(self.device)
            yield self.transform(images), labels


class _SeededSampler(Sampler):
    """Pairs every index with a per-sample seed drawn from (seed, epoch, rank)."""

    def __init__(self, sampler: TrainingSampler, seed: int):
        self.sampler = sampler
        self.seed = seed

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        order = self.sampler.indices()
        generator = torch.Generator()
        generator.manual_seed(
            derive_seed(self.seed, self.sampler.epoch, self.sampler.rank, _SAMPLE_STREAM)
        )
        seeds = torch.randint(0, 1 << 62, (len(order),), generator=generator)
        return iter(zip(order.tolist(), seeds.tolist()))


class _SeededDataset(Dataset):
    """Seeds the RNGs before each sample's transform, so crops do not depend on workers.

    Items are ``(image, label, problem)``: an unreadable image is reported or replaced
    according to the dataset's ``on_bad_image`` (see ``bad_images.py``).
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def _load(self, index: int, seed: int):
        if get_worker_info() is not None:  # a worker process owns its global RNGs
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % (1 << 32))
            return self.dataset[index]
        with torch.random.fork_rng(devices=[]):  # main process: leave its RNG untouched
            torch.manual_seed(seed)
            return self.dataset[index]

    def __getitem__(self, item):
        index, seed = item
        # A replacement image gets the same seed: the result depends on the index alone.
        return read_training_item(self.dataset, index, lambda i: self._load(i, seed))


def _init_worker(seed: int, rank: int, worker_id: int) -> None:
    # Per-sample seeding covers the transforms; this only separates any other RNG use.
    worker_seed = derive_seed(seed, rank, worker_id)
    torch.manual_seed(worker_seed)
    random.seed(worker_seed)
    np.random.seed(worker_seed % (1 << 32))


def _loader_kwargs(num_workers: int, seed: int = 0) -> dict:
    # A private generator: otherwise each new DataLoader iterator draws its base seed from
    # the global torch RNG, and the data order would shift the model's random stream.
    generator = torch.Generator()
    generator.manual_seed(seed)
    return dict(
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
        generator=generator,
        collate_fn=collate_checked,
    )


def _release_workers(loader: DataLoader) -> None:
    # Drops the persistent-workers iterator while it is intact, so its workers stop at once.
    # Left to the garbage collector (the trainer sits in a reference cycle with its hooks),
    # the iterator is torn down after its queues and waits 5 s for each worker to time out.
    loader._iterator = None


def _source(dataset: Dataset) -> str:
    list_file = getattr(dataset, "list_file", None)
    return os.path.basename(list_file) if list_file else type(dataset).__name__


class FileTrainLoader:
    """torch ``DataLoader`` over an image-file dataset with a ``TrainingSampler``."""

    def __init__(
        self,
        dataset: Dataset,
        sampler: TrainingSampler,
        batch_size: int,
        seed: int,
        drop_last: bool = False,
        num_workers: int = 0,
    ):
        """Wrap ``dataset`` and ``sampler`` in a seeded DataLoader.

        Args:
            dataset: image-file dataset whose items are already transformed tensors.
            sampler: yields this rank's indices; ``set_epoch`` is forwarded to it.
            batch_size: images per batch on this rank.
            seed: every sample's augmentation seed derives from (seed, epoch, rank).
            drop_last: drop the last incomplete batch.
            num_workers: loader processes (persistent when > 0).
        """
        self.dataset = dataset
        self.sampler = sampler
        self.epoch = 0
        self._loader = DataLoader(
            _SeededDataset(dataset),
            batch_size=batch_size,
            sampler=_SeededSampler(sampler, seed),
            drop_last=drop_last,
            worker_init_fn=partial(_init_worker, seed, sampler.rank),
            **_loader_kwargs(num_workers, derive_seed(seed, sampler.rank)),
        )
        weakref.finalize(self, _release_workers, self._loader)
        self.bad_images = BadImageLog(
            "replaced by the next readable image of its class", _source(dataset)
        )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (sampler order and per-sample seeds) of the next iteration."""
        self.epoch = int(epoch)
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self):
        for batch, problems in self._loader:
            self.bad_images.check(problems)
            yield batch
        self.bad_images.end_pass(f"Training epoch {self.epoch + 1}")


class FileTestLoader:
    """Sequential DataLoader over this rank's contiguous shard (no padding duplicates)."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        num_workers: int = 0,
    ):
        """Select this rank's contiguous shard.

        Args:
            dataset: image-file dataset with test-time transforms.
            batch_size: images per batch on this rank.
            num_replicas, rank: distributed layout.
            num_workers: loader processes (persistent when > 0).
        """
        self.dataset = dataset
        self.start, self.end = shard_range(len(dataset), num_replicas, rank)
        self.indices = range(self.start, self.end)
        self._loader = DataLoader(
            CheckedItems(dataset, self.indices),
            batch_size=batch_size,
            shuffle=False,
            **_loader_kwargs(num_workers),
        )
        weakref.finalize(self, _release_workers, self._loader)
        self.bad_images = BadImageLog("left out of the evaluation", _source(dataset))

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self):
        yielded = 0
        for batch, problems in self._loader:
            self.bad_images.check(problems)
            if batch is not None:  # None: every image of the batch was skipped
                yielded += len(batch[1])
                yield batch
        self.bad_images.end_pass("Evaluation")
        if yielded == 0 and len(self.indices) > 0:
            raise DatasetError(
                f"DATASETS.ON_BAD_IMAGE=skip skipped all {len(self.indices)} images of "
                f"{_source(self.dataset)} in this evaluation: none could be read."
            )
