"""Data registries. Each docstring states what a registered object is called with."""

from fvcore.common.registry import Registry

DATASET_REGISTRY = Registry("DATASET")
DATASET_REGISTRY.__doc__ = """
Datasets. Called as ``obj(cfg)``; returns a ``DatasetSplits`` (train / optional val / test
datasets and the training class counts).

The entries in ride_dive are ``DatasetSplits`` subclasses with a ``@configurable`` constructor,
so ``CIFAR10LT(cfg)`` builds from a config and ``CIFAR10LT(root=..., imbalance_factor=...)``
without one. Every split has an int64 ``labels`` tensor and ``num_classes``; in-memory splits
are ``InMemoryImageDataset`` (uint8 images, augmented batch-wise by the loaders), image-file
splits return transformed tensors.
"""

SAMPLER_REGISTRY = Registry("SAMPLER")
SAMPLER_REGISTRY.__doc__ = """
Training samplers. Called as ``obj(cfg, labels=LongTensor, seed=int, num_replicas=int,
rank=int)``; an iterable of dataset indices for this rank with ``set_epoch(epoch)`` and
``__len__``. The order depends only on (seed, epoch, rank).

The entries in ride_dive subclass ``samplers.TrainingSampler``, which also offers
``indices()`` (this rank's order as a LongTensor, used by the in-memory loader) and
``global_indices()`` (the unsharded sequence, identical on every rank).
"""
