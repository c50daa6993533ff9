"""``DATASETS.ON_BAD_IMAGE`` in the image-file loaders: stop on, or skip, unreadable images.

A worker process never raises for a bad image: torch would re-raise it in the main process
with the worker's whole traceback pasted into the message. Instead every item carries its
problem (the exception object, pickled back with the batch) and the main process decides:

- ``"fail"``: it raises that exception, a one-paragraph ``BadImageError`` (or
  ``FileNotFoundError``) naming the file and its ``list_file:line``.
- ``"skip"``, training: the worker has already put the next readable image of the same
  class, in list order (wrapping around), in its place. The batch size, the iterations per
  epoch and the sampler's class balance stay as they were, and the replacement depends on
  the index alone, so a run stays deterministic whatever the number of workers. (Dropping
  the image instead would shrink batches, could empty one, and would skew class-aware
  sampling.)
- ``"skip"``, evaluation: the image is left out of its batch (an emptied batch is not
  yielded), so the metrics cover the readable images and none is counted twice.

Skipped images are counted (``BadImageLog.total``); each distinct file is logged once, and
every pass that skipped something logs its count.
"""

import logging
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from .errors import BadImageError, DatasetError

__all__ = ["Problem", "BadImageLog", "CheckedItems", "read_training_item", "collate_checked"]

logger = logging.getLogger(__name__)

# What a dataset raises for one unreadable image (ListFileDataset.__getitem__).
READ_ERRORS = (BadImageError, FileNotFoundError)


class Problem(NamedTuple):
    """An unreadable image met by a worker; ``fatal`` problems are raised whatever the mode."""

    error: Exception
    fatal: bool


def on_bad_image(dataset) -> str:
    """The dataset's ``on_bad_image`` policy ("fail" for datasets without one)."""
    return getattr(dataset, "on_bad_image", "fail")


def _same_class_after(labels: torch.Tensor, index: int) -> List[int]:
    """Indices of ``index``'s class after it in list order, then those before it."""
    same = torch.nonzero(labels == labels[index]).flatten().tolist()
    position = same.index(index)
    return same[position + 1 :] + same[:position]


def read_training_item(dataset, index: int, load: Callable[[int], Tuple]) -> Tuple:
    """``(image, label, problem)`` of training index ``index``; ``load(i)`` reads item ``i``.

    With "skip", an unreadable image is replaced by the next readable one of its class (see
    the module docstring); ``problem`` then records the skipped file. A class with no
    readable image left is a fatal problem.
    """
    try:
        image, label = load(index)
        return image, label, None
    except READ_ERRORS as error:
        if on_bad_image(dataset) != "skip":
            return None, None, Problem(error, True)
        for other in _same_class_after(dataset.labels, index):
            try:
                image, label = load(other)
            except READ_ERRORS:
                continue
            return image, label, Problem(error, False)
        label = int(dataset.labels[index])
        where = getattr(dataset, "list_file", type(dataset).__name__)
        return (
            None,
            None,
            Problem(
                DatasetError(
                    f"DATASETS.ON_BAD_IMAGE=skip, but no image of class {label} in {where} can "
                    "be read, so there is nothing to train on in its place. The first failure: "
                    f"{error}"
                ),
                True,
            ),
        )


class CheckedItems(Dataset):
    """Evaluation items ``(image, label, problem)`` of ``dataset`` at ``indices``."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Tuple:
        try:
            image, label = self.dataset[self.indices[k]]
            return image, label, None
        except READ_ERRORS as error:
            return None, None, Problem(error, on_bad_image(self.dataset) != "skip")


def collate_checked(batch: List[Tuple]) -> Tuple[Optional[object], List[Problem]]:
    """``(default-collated (images, labels) of the readable items or None, problems)``."""
    kept = [(image, label) for image, label, _ in batch if image is not None]
    problems = [problem for _, _, problem in batch if problem is not None]
    return (default_collate(kept) if kept else None), problems


class BadImageLog:
    """Main-process side: raises fatal problems, counts and logs the skipped images.

    Args:
        action: what happens to a skipped image, for the log ("replaced by ...").
        source: the dataset's name or list file, for the log.
    """

    def __init__(self, action: str, source: str):
        self.action = action
        self.source = source
        self.total = 0  # skipped images over all passes (one image skipped twice counts 2)
        self.in_pass = 0
        self._seen = set()

    def check(self, problems: List[Problem]) -> None:
        """Raise the first fatal problem; otherwise count (and log new files)."""
        for problem in problems:
            if problem.fatal:
                raise problem.error
        for problem in problems:
            self.total += 1
            self.in_pass += 1
            text = getattr(problem.error, "problem", None) or str(problem.error)
            if text not in self._seen:
                self._seen.add(text)
                logger.warning("DATASETS.ON_BAD_IMAGE=skip: %s; %s.", text, self.action)

    def end_pass(self, what: str) -> None:
        """Log the count of the pass that just ended (if any) and start a new one."""
        if self.in_pass:
            logger.warning(
                "%s: skipped %d unreadable image(s) of %s (%d distinct file(s) so far, %d "
                "skips in all).",
                what,
                self.in_pass,
                self.source,
                len(self._seen),
                self.total,
            )
        self.in_pass = 0
