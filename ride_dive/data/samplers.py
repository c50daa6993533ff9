"""Training samplers (docs/METHODS.md section 5): instance, class-aware, square-root, progressive.

Every sampler builds the same global sequence on every rank from (seed, epoch) alone, pads it
to a multiple of the number of replicas and hands rank ``r`` the items ``r::num_replicas``.
Sequences are built with tensor ops (a Python loop over classes at most), never per sample.
"""

import math
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from ..config import configurable
from ..utils.registry import lookup
from .registry import SAMPLER_REGISTRY

__all__ = [
    "derive_seed",
    "TrainingSampler",
    "InstanceBalancedSampler",
    "ClassAwareSampler",
    "SquareRootSampler",
    "ProgressivelyBalancedSampler",
    "build_sampler",
]


def derive_seed(*parts: int) -> int:
    """Mix integers (seed, epoch, rank, ...) into one 63-bit seed with NumPy's SeedSequence."""
    words = np.random.SeedSequence([int(p) % (1 << 64) for p in parts]).generate_state(2)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


class TrainingSampler(Sampler):
    """Base class: per-(seed, epoch) deterministic global order, sharded across ranks.

    Subclasses implement ``_generate(generator) -> LongTensor`` of ``len(labels)`` indices.
    """

    @configurable
    def __init__(self, labels: torch.Tensor, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        """Store the labels and the distributed layout.

        Args:
            labels: int64 label of every dataset item.
            seed: base seed; the order of an epoch depends only on (seed, epoch).
            num_replicas: number of processes sharing the sequence.
            rank: this process's index in ``[0, num_replicas)``.
        """
        labels = torch.as_tensor(labels, dtype=torch.int64).cpu()
        if labels.dim() != 1 or labels.numel() == 0:
            raise ValueError("A sampler needs a non-empty 1-D tensor of labels.")
        if labels.min() < 0:
            raise ValueError(f"Labels must be >= 0; found {int(labels.min())}.")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"Need 0 <= rank < num_replicas; got rank={rank}, num_replicas={num_replicas}."
            )
        self.labels = labels
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.counts = torch.bincount(labels)
        # Indices grouped by class (stable), so class c's members are order[starts[c]:...].
        self.order = torch.argsort(labels, stable=True)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    @classmethod
    def from_config(cls, cfg, labels, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        return dict(labels=labels, seed=seed, num_replicas=num_replicas, rank=rank)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order ``__iter__`` produces."""
        self.epoch = int(epoch)

    def global_indices(self) -> torch.Tensor:
        """The whole sequence of this epoch, identical on every rank."""
        generator = torch.Generator()
        generator.manual_seed(derive_seed(self.seed, self.epoch))
        return self._generate(generator)

    def indices(self) -> torch.Tensor:
        """This rank's share of the padded global sequence, as a LongTensor."""
        seq = self.global_indices()
        total = len(self) * self.num_replicas
        if total > len(seq):  # pad by wrapping around, as DistributedSampler does
            seq = seq.repeat(math.ceil(total / len(seq)))[:total]
        return seq[self.rank :: self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.num_replicas)

    def _generate(self, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _draw_within_classes(
        self, classes: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One uniformly chosen member of each class in ``classes`` (with replacement)."""
        sizes = self.counts[classes]
        u = torch.rand(len(classes), generator=generator, dtype=torch.float64)
        offset = torch.minimum((u * sizes).long(), sizes - 1)
        return self.order[self.starts[classes] + offset]


@SAMPLER_REGISTRY.register()
class InstanceBalancedSampler(TrainingSampler):
    """Every image once per epoch, in a random order."""

    def _generate(self, generator):
        return torch.randperm(len(self.labels), generator=generator)


@SAMPLER_REGISTRY.register()
class ClassAwareSampler(TrainingSampler):
    """Class-balanced sampling of the Decoupling paper (cRT / LWS).

    Classes are visited in a cycle reshuffled after each pass, so all classes are visited
    equally often; each visit takes ``samples_per_class`` consecutive items from that
    class's own list, itself reshuffled each time it runs out. ``len(labels)`` per epoch.
    """

    # Every class is drawn equally often: a classifier trained on these batches sees a
    # uniform prior (the label-shift evaluation asks for this).
    balances_classes = True

    @configurable
    def __init__(
        self,
        labels,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        samples_per_class: int = 4,
    ):
        """Args: as ``TrainingSampler``, plus ``samples_per_class`` images per class visit."""
        super().__init__(labels, seed, num_replicas, rank)
        if samples_per_class < 1:
            raise ValueError(f"samples_per_class must be >= 1; got {samples_per_class}.")
        self.samples_per_class = int(samples_per_class)

    @classmethod
    def from_config(cls, cfg, labels, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        return dict(
            labels=labels,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            samples_per_class=cfg.DATALOADER.SAMPLES_PER_CLASS,
        )

    def _generate(self, generator):
        k = self.samples_per_class
        n = len(self.labels)
        visits = math.ceil(n / k)
        present = torch.nonzero(self.counts > 0).flatten()
        passes = math.ceil(visits / len(present))
        cycle = torch.cat(
            [present[torch.randperm(len(present), generator=generator)] for _ in range(passes)]
        )[:visits]
        per_class = torch.bincount(cycle, minlength=len(self.counts)).tolist()
        # Fill the visits class by class; visits of one class keep their cycle order.
        chunks = []
        for cls in present.tolist():
            need = per_class[cls] * k
            if need == 0:
                continue
            size = int(self.counts[cls])
            start = int(self.starts[cls])
            rounds = math.ceil(need / size)
            stream = torch.cat([torch.randperm(size, generator=generator) for _ in range(rounds)])[
                :need
            ]
            chunks.append(self.order[start + stream].view(-1, k))
        grouped = torch.cat(chunks)
        out = torch.empty_like(grouped)
        out[torch.argsort(cycle, stable=True)] = grouped
        return out.flatten()[:n]


class _ClassProbabilitySampler(TrainingSampler):
    """Draw a class from ``class_probabilities()`` then a uniform member, with replacement."""

    def class_probabilities(self) -> torch.Tensor:
        """Probability of each class (indexed by label) in the current epoch."""
        raise NotImplementedError

    def _generate(self, generator):
        probs = self.class_probabilities()
        classes = torch.multinomial(probs, len(self.labels), replacement=True, generator=generator)
        return self._draw_within_classes(classes, generator)


@SAMPLER_REGISTRY.register()
class SquareRootSampler(_ClassProbabilitySampler):
    """Class probability proportional to ``n_c ** 0.5``; uniform within the class."""

    def class_probabilities(self):
        weights = self.counts.double().sqrt()
        return weights / weights.sum()


@SAMPLER_REGISTRY.register()
class ProgressivelyBalancedSampler(_ClassProbabilitySampler):
    """Class probability ``(1 - t) * n_c / N + t / C`` with ``t = epoch / max_epochs``."""

    @configurable
    def __init__(
        self, labels, seed: int = 0, num_replicas: int = 1, rank: int = 0, max_epochs: int = 1
    ):
        """Args: as ``TrainingSampler``, plus ``max_epochs`` E of the schedule."""
        super().__init__(labels, seed, num_replicas, rank)
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1; got {max_epochs}.")
        self.max_epochs = int(max_epochs)

    @classmethod
    def from_config(cls, cfg, labels, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        return dict(
            labels=labels,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            max_epochs=cfg.SOLVER.MAX_EPOCHS,
        )

    def class_probabilities(self):
        t = min(self.epoch / self.max_epochs, 1.0)
        counts = self.counts.double()
        present = (counts > 0).double()
        return (1.0 - t) * counts / counts.sum() + t * present / present.sum()


def build_sampler(
    cfg, labels: Sequence[int], seed: int, num_replicas: int = 1, rank: int = 0
) -> TrainingSampler:
    """Build the sampler named by DATALOADER.SAMPLER."""
    cls = lookup(SAMPLER_REGISTRY, cfg.DATALOADER.SAMPLER, "DATALOADER.SAMPLER")
    return cls(cfg, labels=torch.as_tensor(labels), seed=seed, num_replicas=num_replicas, rank=rank)
