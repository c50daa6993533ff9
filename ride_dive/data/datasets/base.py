"""Dataset containers shared by every dataset: in-memory image tensors and the split bundle."""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .lt_generator import LTSplitIndices

__all__ = ["InMemoryImageDataset", "DatasetSplits", "class_counts_of", "assemble_lt_splits"]


def class_counts_of(labels: torch.Tensor, num_classes: int) -> List[int]:
    """Return the number of samples of each class as a list of ``num_classes`` ints."""
    return torch.bincount(labels, minlength=num_classes).tolist()


class InMemoryImageDataset(Dataset):
    """Images held as one uint8 tensor, so batches are gathered with one indexing op.

    Attributes:
        images: uint8 tensor ``(N, C, H, W)``.
        labels: int64 tensor ``(N,)``.
        num_classes: number of classes (labels lie in ``[0, num_classes)``).
        class_names: one name per class.
        mean, std: per-channel statistics on the 0..1 scale used for normalisation.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        class_names: Optional[Sequence[str]] = None,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
    ):
        """Wrap tensors; see the class docstring for the meaning of each argument."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor of shape (N, C, H, W); got dtype "
                f"{images.dtype} and shape {tuple(images.shape)}."
            )
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must have shape ({images.shape[0]},) to match the images; got "
                f"{tuple(labels.shape)}."
            )
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"labels must lie in [0, {num_classes}); found values from "
                f"{int(labels.min())} to {int(labels.max())}."
            )
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(
                f"mean and std need one value per channel ({channels}); got {len(mean)} "
                f"and {len(std)}."
            )
        self.images = images
        self.labels = labels
        self.num_classes = int(num_classes)
        names = list(class_names) if class_names is not None else []
        self.class_names = names or [f"class_{i}" for i in range(self.num_classes)]
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, indices: np.ndarray) -> "InMemoryImageDataset":
        """Return a new dataset holding the given rows (copied, in the given order)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return InMemoryImageDataset(
            self.images.index_select(0, idx),
            self.labels.index_select(0, idx),
            self.num_classes,
            self.class_names,
            self.mean,
            self.std,
        )


@dataclass
class DatasetSplits:
    """What every registered dataset builds.

    Attributes:
        train: the (long-tailed) training set.
        val: a validation set, or None when the dataset has none.
        test: the balanced test set.
        class_counts: training images per class, ``len == num_classes``.
        num_classes: number of classes.
    """

    train: Dataset
    val: Optional[Dataset]
    test: Dataset
    class_counts: List[int]
    num_classes: int


def assemble_lt_splits(
    full_train: InMemoryImageDataset, full_test: InMemoryImageDataset, split: LTSplitIndices
) -> dict:
    """Slice the full train/test sets by ``split``; returns ``DatasetSplits`` keyword args.

    The val split comes from the training images the generator dropped or from the test
    set, as recorded in ``split.val_from``.
    """
    train = full_train.subset(split.train)
    val = None
    if split.val is not None:
        source = full_train if split.val_from == "train" else full_test
        val = source.subset(split.val)
    test = full_test if split.test is None else full_test.subset(split.test)
    return dict(
        train=train,
        val=val,
        test=test,
        class_counts=class_counts_of(train.labels, full_train.num_classes),
        num_classes=full_train.num_classes,
    )
