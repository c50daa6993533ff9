"""MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019) on training batches, soft targets.

``MixedBatches`` wraps a train loader. Each batch of an epoch is mixed with probability
``INPUT.MIX_PROB`` by torchvision's ``transforms.v2.MixUp`` / ``CutMix`` (with both alphas
set, one of the two per batch, equally likely): image i is blended with, or gets a box from,
image i-1 of the (already shuffled) batch, with ``lambda ~ Beta(alpha, alpha)``, and its
target becomes the ``(C,)`` distribution ``lambda * onehot(y_i) + (1 - lambda) *
onehot(y_{i-1})`` (for CutMix, lambda is the kept area). Every batch of an epoch that mixes
is yielded with ``(N, C)`` float targets (unmixed batches as one-hot rows), which every loss
that ``supports_soft_targets`` takes; the last ``INPUT.MIX_OFF_EPOCHS`` epochs yield the
plain integer labels. The random draws come from torch's global generator, which the
trainer seeds from (SEED, epoch, rank) at every epoch start, so a resumed run mixes exactly
as the uninterrupted one. The class priors of BSCE / logit adjustment stay the dataset's
counts: mixing changes the targets, not the training distribution the losses correct for.
"""

from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["MixedBatches", "mixing_enabled"]


def mixing_enabled(cfg) -> bool:
    """Whether the config asks for MixUp or CutMix."""
    return cfg.INPUT.MIXUP_ALPHA > 0 or cfg.INPUT.CUTMIX_ALPHA > 0


def _mixer(num_classes: int, mixup_alpha: float, cutmix_alpha: float):
    from torchvision.transforms import v2

    choices = []
    if mixup_alpha > 0:
        choices.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
    if cutmix_alpha > 0:
        choices.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
    if not choices:
        raise ValueError("MixedBatches needs INPUT.MIXUP_ALPHA > 0 or INPUT.CUTMIX_ALPHA > 0")
    return choices[0] if len(choices) == 1 else v2.RandomChoice(choices)


class MixedBatches:
    """A train loader whose batches are MixUp/CutMix-ed, with soft targets.

    Args:
        loader: yields ``(images, int64 labels)``; has ``set_epoch`` and ``len``.
        num_classes: C, the width of the soft targets.
        mixup_alpha, cutmix_alpha: the Beta parameters (0 = that one off).
        prob: probability that a batch is mixed.
        off_from_epoch: first epoch trained on unmixed batches (None = never).
    """

    def __init__(
        self,
        loader,
        num_classes: int,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        prob: float = 1.0,
        off_from_epoch: Optional[int] = None,
    ):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"INPUT.MIX_PROB must be in [0, 1], got {prob}")
        self.loader = loader
        self.num_classes = int(num_classes)
        self.prob = float(prob)
        self.off_from_epoch = off_from_epoch
        self._mix = _mixer(self.num_classes, mixup_alpha, cutmix_alpha)
        self.epoch = 0

    @classmethod
    def from_config(cls, cfg, loader, num_classes: int) -> "MixedBatches":
        off = cfg.INPUT.MIX_OFF_EPOCHS
        return cls(
            loader,
            num_classes,
            cfg.INPUT.MIXUP_ALPHA,
            cfg.INPUT.CUTMIX_ALPHA,
            cfg.INPUT.MIX_PROB,
            cfg.SOLVER.MAX_EPOCHS - off if off > 0 else None,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name):  # the wrapped loader's attributes (dataset, sampler, ...)
        if name == "loader":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)

    @property
    def active(self) -> bool:
        """Whether the current epoch mixes."""
        return self.off_from_epoch is None or self.epoch < self.off_from_epoch

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        if not self.active:
            yield from self.loader
            return
        for images, labels in self.loader:
            # Drawn for every batch (even at prob 1), so the stream is the same for any prob.
            mix = bool(torch.rand(()) < self.prob)
            if mix:
                images, targets = self._mix(images, labels)
            else:
                targets = F.one_hot(labels, self.num_classes)
            yield images, targets.float()
