"""SyntheticLT: a small, learnable long-tailed image set for tests and demos."""

import numpy as np
import torch

from ...config import configurable
from ..registry import DATASET_REGISTRY
from .base import DatasetSplits, InMemoryImageDataset, assemble_lt_splits
from .lt_generator import make_lt_split

__all__ = ["SyntheticLT", "make_synthetic_images"]


def make_synthetic_images(
    labels: np.ndarray, num_classes: int, image_size: int, channels: int, seed: int
) -> np.ndarray:
    """Draw one uint8 image per label: a class-specific pattern plus noise.

    Each class has its own brightness per channel and its own stripes (orientation and
    frequency). Stripes run along an image axis and get a random phase per image, so the
    class stays recognisable after random crops and horizontal flips.

    Args:
        labels: int array of class indices, one per image.
        num_classes: number of classes (fixes the class patterns).
        image_size: side of the square images.
        channels: image channels.
        seed: seed of the class patterns and of the per-image noise.

    Returns:
        uint8 array ``(len(labels), channels, image_size, image_size)``.
    """
    rng = np.random.RandomState(seed)
    levels = np.linspace(48.0, 208.0, num_classes)
    # Each channel orders the brightness levels differently, so colour also separates classes.
    level = np.stack([rng.permutation(levels) for _ in range(channels)], axis=1)  # (C, ch)
    orientation = rng.randint(0, 2, size=num_classes)
    frequency = rng.randint(1, max(2, image_size // 4 + 1), size=num_classes)
    n = len(labels)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
    noise = rng.normal(0.0, 20.0, size=(n, channels, image_size, image_size))
    coord = np.arange(image_size, dtype=np.float64)
    wave = np.cos(
        2.0 * np.pi * frequency[labels, None] * coord[None, :] / image_size + phase[:, None]
    )  # (n, S)
    along_rows = orientation[labels] == 0
    stripes = np.where(along_rows[:, None, None], wave[:, :, None], wave[:, None, :])
    images = level[labels][:, :, None, None] + 40.0 * stripes[:, None] + noise
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _channel_stats(images: np.ndarray):
    pixels = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1) / 255.0
    return pixels.mean(axis=1).tolist(), np.maximum(pixels.std(axis=1), 1e-3).tolist()


@DATASET_REGISTRY.register()
class SyntheticLT(DatasetSplits):
    """A seeded long-tailed set: a balanced pool cut by the standard LT generator.

    The full training pool has ``n_max`` images per class (``n_max + val_per_class`` with
    VAL_SOURCE "train_remainder", so the head class has images to spare); the generator
    keeps ``lt_counts(n_max, C, IF)`` of them and the validation split is drawn from the
    unused ones, exactly as for CIFAR. The test set is balanced.
    """

    default_n_max = 100

    @configurable
    def __init__(
        self,
        num_classes: int = 10,
        image_size: int = 16,
        channels: int = 3,
        imbalance_factor: float = 10.0,
        max_per_class: int = 0,
        test_per_class: int = 20,
        seed: int = 0,
        val_source: str = "none",
        val_per_class: int = 0,
    ):
        """Generate the images and build the LT train / val / test splits.

        Args:
            num_classes: number of classes (DATASETS.SYNTHETIC.NUM_CLASSES).
            image_size: image side (DATASETS.SYNTHETIC.IMAGE_SIZE).
            channels: image channels (MODEL.BACKBONE.IN_CHANNELS).
            imbalance_factor: n_max / n_min.
            max_per_class: images of the head class; 0 = 100.
            test_per_class: balanced test images per class.
            seed: seed of the images and of the LT generator.
            val_source: "none", "train_remainder" or "test".
            val_per_class: images per class in the validation split.
        """
        for name, value in (
            ("num_classes", num_classes),
            ("image_size", image_size),
            ("channels", channels),
            ("test_per_class", test_per_class),
        ):
            if value < 1:
                raise ValueError(f"SyntheticLT: {name} must be >= 1, got {value}.")
        n_max = max_per_class or self.default_n_max
        # The generator keeps every head-class image, so a val split drawn from the unused
        # training images needs a pool larger than n_max.
        spare = val_per_class if val_source == "train_remainder" else 0
        train_y = np.repeat(np.arange(num_classes), n_max + spare)
        test_y = np.repeat(np.arange(num_classes), test_per_class)
        # One draw for train and test keeps both from the same class patterns.
        images = make_synthetic_images(
            np.concatenate([train_y, test_y]), num_classes, image_size, channels, seed
        )
        train_x, test_x = images[: len(train_y)], images[len(train_y) :]
        mean, std = _channel_stats(train_x)

        def wrap(x, y):
            return InMemoryImageDataset(
                torch.from_numpy(x), torch.from_numpy(y), num_classes, None, mean, std
            )

        split = make_lt_split(
            train_y, test_y, num_classes, n_max, imbalance_factor, seed, val_source, val_per_class
        )
        super().__init__(**assemble_lt_splits(wrap(train_x, train_y), wrap(test_x, test_y), split))

    @classmethod
    def from_config(cls, cfg) -> dict:
        d = cfg.DATASETS
        return dict(
            num_classes=d.SYNTHETIC.NUM_CLASSES,
            image_size=d.SYNTHETIC.IMAGE_SIZE,
            channels=cfg.MODEL.BACKBONE.IN_CHANNELS,
            imbalance_factor=d.IMBALANCE_FACTOR,
            max_per_class=d.MAX_PER_CLASS,
            test_per_class=d.SYNTHETIC.TEST_PER_CLASS,
            seed=d.IMBALANCE_SEED,
            val_source=d.VAL_SOURCE,
            val_per_class=d.VAL_PER_CLASS,
        )
