"""Data registries. Each docstring states what a registered object is called with."""
from fvcore.common.registry import Registry

DATASET_REGISTRY = Registry("DATASET")
DATASET_REGISTRY.__doc__ = """
Datasets. Called as ``obj(cfg)``; returns a ``DatasetSplits`` (train / optional val / test
datasets and the training class counts).
"""

SAMPLER_REGISTRY = Registry("SAMPLER")
SAMPLER_REGISTRY.__doc__ = """
Training samplers. Called as ``obj(cfg, labels=LongTensor, seed=int, num_replicas=int,
rank=int)``; an iterable of dataset indices for this rank with ``set_epoch(epoch)`` and
``__len__``. The order depends only on (seed, epoch, rank).
"""
