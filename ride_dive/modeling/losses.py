"""Long-tailed classification losses: CE, Balanced Softmax, logit-adjusted, LDAM, focal;
all with DRW.

Every loss computes in float32 whatever the logits' dtype (autocast), takes the training
class counts, and applies deferred re-weighting (DRW, Cao et al. 2019) from ``drw_epoch``
on: class weights ``w_c = (1 - beta) / (1 - beta^n_c)`` normalised to sum to C, used as
``F.cross_entropy(weight=w)`` uses them (a weighted mean over the batch). ``set_epoch``
switches DRW on. Count-derived tensors are non-persistent buffers: they follow the module's
device but are never saved in checkpoints (they are recomputed from the dataset).
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, configurable
from .registry import LOSS_REGISTRY

__all__ = [
    "BalancedSoftmaxLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LongTailLoss",
    "drw_weights",
    "ldam_margins",
    "soft_weighted_mean",
]


def _counts_tensor(class_counts: Sequence[int]) -> torch.Tensor:
    if class_counts is None:
        raise ValueError("This loss needs the training class counts (class_counts=...)")
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D sequence, got {class_counts!r}")
    if bool((counts <= 0).any()):
        # A user's data problem (too few images per class, a partial list file), reported
        # as a config error: one paragraph, no traceback.
        raise ConfigError(
            "This loss needs training images of every class, but the training split has none "
            f"of classes {torch.nonzero(counts <= 0).flatten().tolist()[:10]}: with "
            "DATASETS.MAX_PER_CLASS and DATASETS.IMBALANCE_FACTOR the tail rounds to zero, or "
            "the list file lacks them. Raise MAX_PER_CLASS, lower IMBALANCE_FACTOR, or use "
            "a loss without class priors (CrossEntropyLoss)"
        )
    return counts


def drw_weights(class_counts: Sequence[int], beta: float) -> torch.Tensor:
    """Class-balanced weights ``(1 - beta) / (1 - beta^n_c)`` normalised to sum to C.

    Args:
        class_counts: training images per class (all > 0).
        beta: in [0, 1); 0.9999 in the papers.
    """
    if not 0 <= beta < 1:
        raise ValueError(f"MODEL.LOSS.DRW_BETA must be in [0, 1), got {beta}")
    counts = _counts_tensor(class_counts)
    # float64: with beta = 0.9999, 1 - beta^n loses digits in float32 for small n.
    w = (1.0 - beta) / (1.0 - torch.pow(beta, counts))
    return (w * counts.numel() / w.sum()).float()


def ldam_margins(class_counts: Sequence[int], max_margin: float) -> torch.Tensor:
    """LDAM margins ``m_c = max_margin * n_c^(-1/4) / max_c n_c^(-1/4)``."""
    if max_margin < 0:
        raise ValueError(f"MODEL.LOSS.LDAM_MAX_MARGIN must be >= 0, got {max_margin}")
    m = _counts_tensor(class_counts).pow(-0.25)
    return (m * (max_margin / m.max())).float()


def soft_weighted_mean(
    per_class: torch.Tensor, targets: torch.Tensor, weight: Optional[torch.Tensor]
) -> torch.Tensor:
    """Batch loss from ``(N, C)`` per-class terms ``t_ic * l_ic``: their sum over classes,
    averaged over images; with class weights ``w`` the weighted mean ``sum_ic w_c t_ic l_ic /
    sum_ic w_c t_ic``, which on one-hot targets is ``F.cross_entropy(weight=w)``'s
    ``sum_i w_yi l_i / sum_i w_yi``."""
    if weight is None:
        return per_class.sum(dim=1).mean()
    return (per_class * weight).sum() / (targets * weight).sum()


class LongTailLoss(nn.Module):
    """Base class: input checks, float32 computation, DRW weights and ``set_epoch``.

    Subclasses implement ``compute(logits, targets, weight)`` on float32 logits, where
    ``weight`` is the DRW class-weight vector or ``None``.

    Args:
        class_counts: training images per class; may be ``None`` when nothing needs them
            (plain CE without DRW).
        drw_epoch: first epoch of re-weighting; < 0 = never.
        drw_beta: the DRW beta.
    """

    def __init__(
        self,
        class_counts: Optional[Sequence[int]] = None,
        drw_epoch: int = -1,
        drw_beta: float = 0.9999,
    ):
        super().__init__()
        self.num_classes = None if class_counts is None else len(class_counts)
        self.drw_epoch = drw_epoch
        self.epoch = 0
        weights = None
        if drw_epoch >= 0:
            if class_counts is None:
                raise ValueError("DRW (MODEL.LOSS.DRW_EPOCH >= 0) needs class_counts")
            weights = drw_weights(class_counts, drw_beta)
        self.register_buffer("drw_class_weights", weights, persistent=False)

    @staticmethod
    def loss_kwargs(cfg, class_counts) -> dict:
        """The base-class keyword arguments from ``MODEL.LOSS``, for ``from_config``."""
        return {
            "class_counts": class_counts,
            "drw_epoch": cfg.MODEL.LOSS.DRW_EPOCH,
            "drw_beta": cfg.MODEL.LOSS.DRW_BETA,
        }

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss the current (0-based) training epoch."""
        self.epoch = epoch

    @property
    def drw_active(self) -> bool:
        """Whether the class weights apply at the current epoch."""
        return self.drw_epoch >= 0 and self.epoch >= self.drw_epoch

    def class_weights(self) -> Optional[torch.Tensor]:
        """The DRW weights at the current epoch, or ``None`` before ``drw_epoch``."""
        return self.drw_class_weights if self.drw_active else None

    # Takes (N, C) soft targets (MixUp/CutMix, data/mixing.py) through ``compute_soft``.
    supports_soft_targets = True

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``logits (N, C)`` against integer ``targets (N,)`` or, for a loss
        that ``supports_soft_targets``, float target distributions ``(N, C)``."""
        if logits.dim() != 2:
            raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
        if self.num_classes is not None and logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits have {logits.shape[1]} classes but class_counts has {self.num_classes}"
            )
        if targets.dtype.is_floating_point:
            if not self.supports_soft_targets:
                raise ValueError(
                    f"{type(self).__name__} takes class indices, not soft targets "
                    "(MixUp/CutMix: INPUT.MIXUP_ALPHA, INPUT.CUTMIX_ALPHA)"
                )
            if targets.shape != logits.shape:
                raise ValueError(
                    f"soft targets must be {tuple(logits.shape)} like the logits (class "
                    f"indices must be integers), got {tuple(targets.shape)}"
                )
            return self.compute_soft(logits.float(), targets.float(), self.class_weights())
        if targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
            raise ValueError(
                f"targets must be ({logits.shape[0]},) to match logits, got {tuple(targets.shape)}"
            )
        return self.compute(logits.float(), targets.long(), self.class_weights())

    def compute(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """The loss of float32 ``logits`` given int64 ``targets`` and optional class weights."""
        raise NotImplementedError

    def compute_soft(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """The loss given ``(N, C)`` target distributions: cross-entropy of the
        ``fitted_logits`` against them, ``-sum_c t_c log softmax(fitted)_c`` per image
        (CE, Balanced Softmax, logit adjustment). On one-hot targets it equals ``compute``."""
        per_class = -targets * F.log_softmax(self.fitted_logits(logits), dim=1)
        return soft_weighted_mean(per_class, targets, weight)

    def fitted_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits whose softmax this loss fits to the training labels.

        ``logits`` is ``(..., C)``; the result has its shape. The same for every label (a
        label-dependent margin such as LDAM's is left out, as RIDE's own code leaves it out
        of its diversity term). Losses that add a class prior inside the loss return the
        adjusted logits; RIDE's diversity term is measured there
        (``MODEL.LOSS.RIDE.DIVERSITY_SPACE: "fitted"``).
        """
        return logits


@LOSS_REGISTRY.register()
class CrossEntropyLoss(LongTailLoss):
    """Plain cross-entropy (with DRW weights from ``drw_epoch`` on)."""

    @configurable
    def __init__(self, *, class_counts=None, drw_epoch: int = -1, drw_beta: float = 0.9999):
        super().__init__(class_counts, drw_epoch, drw_beta)

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        return cls.loss_kwargs(cfg, class_counts)

    def compute(self, logits, targets, weight):
        return F.cross_entropy(logits, targets, weight=weight)


@LOSS_REGISTRY.register()
class BalancedSoftmaxLoss(LongTailLoss):
    """Balanced Softmax (Ren et al. 2020): ``CE(z + log n, y)``.

    The log prior is added inside the loss only, so the model's logits stay the plain,
    label-balanced ones at test time (``estimates_balanced_posterior``, which the label-shift
    evaluation reads).
    """

    estimates_balanced_posterior = True

    @configurable
    def __init__(self, *, class_counts, drw_epoch: int = -1, drw_beta: float = 0.9999):
        super().__init__(class_counts, drw_epoch, drw_beta)
        self.register_buffer(
            "log_prior", _counts_tensor(class_counts).log().float(), persistent=False
        )

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        return cls.loss_kwargs(cfg, class_counts)

    def compute(self, logits, targets, weight):
        return F.cross_entropy(self.fitted_logits(logits), targets, weight=weight)

    def fitted_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``z + log n``: the training-distribution logits this loss fits."""
        # In float32: a bf16 log n (up to 6.9) would be rounded by up to 0.016 per class.
        return logits.float() + self.log_prior


@LOSS_REGISTRY.register()
class LogitAdjustedLoss(LongTailLoss):
    """Logit-adjusted loss (Menon et al. 2021): ``CE(z + tau * log pi, y)``, ``pi = n / N``.

    ``tau = 1`` is Balanced Softmax (``log pi`` and ``log n`` differ by a constant, which the
    softmax ignores); ``tau = 0`` is plain CE. The adjustment is inside the loss only, so the
    model's logits estimate ``p(y|x) / pi_y^tau``: the label-balanced posterior for tau = 1
    (``estimates_balanced_posterior``), between it and the training one otherwise.

    Args:
        class_counts: training images per class (the dataset's, also under MixUp/CutMix).
        tau: ``MODEL.LOSS.LA_TAU`` (1.0 in the paper).
        drw_epoch, drw_beta: see ``LongTailLoss``.
    """

    @configurable
    def __init__(
        self, *, class_counts, tau: float = 1.0, drw_epoch: int = -1, drw_beta: float = 0.9999
    ):
        super().__init__(class_counts, drw_epoch, drw_beta)
        if not tau >= 0:  # also refuses NaN
            raise ValueError(f"MODEL.LOSS.LA_TAU must be >= 0, got {tau}")
        self.tau = float(tau)
        counts = _counts_tensor(class_counts)
        self.register_buffer("log_prior", (counts / counts.sum()).log().float(), persistent=False)

    @property
    def estimates_balanced_posterior(self) -> bool:
        """True for tau = 1, where the loss is Balanced Softmax's."""
        return self.tau == 1.0

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        return dict(cls.loss_kwargs(cfg, class_counts), tau=cfg.MODEL.LOSS.LA_TAU)

    def compute(self, logits, targets, weight):
        return F.cross_entropy(self.fitted_logits(logits), targets, weight=weight)

    def fitted_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``z + tau * log pi``: the training-distribution logits this loss fits."""
        return logits.float() + self.tau * self.log_prior  # float32, as in BalancedSoftmaxLoss


@LOSS_REGISTRY.register()
class LDAMLoss(LongTailLoss):
    """LDAM (Cao et al. 2019): CE after lowering the target logit by ``scale * m_y``.

    Convention: the logits are taken as already scaled (a ``CosineHead`` with s = 30 gives
    ``s * cos``), so the loss is ``CE(z - scale * m_y * onehot(y), y)``, equal to the
    reference ``s * (cos - m_y)`` when ``scale`` equals the head's s. Pair it with a
    ``CosineHead`` whose ``COSINE_SCALE`` equals ``MODEL.LOSS.LDAM_SCALE``.

    Args:
        class_counts: training images per class.
        max_margin: the largest margin (``MODEL.LOSS.LDAM_MAX_MARGIN``, 0.5).
        scale: s (``MODEL.LOSS.LDAM_SCALE``, 30).
        drw_epoch, drw_beta: see ``LongTailLoss``.

    No soft targets: the margin belongs to the one true class, which a mixed target lacks.
    """

    supports_soft_targets = False
    soft_targets_refusal = "its margin belongs to the one true class"

    @configurable
    def __init__(
        self,
        *,
        class_counts,
        max_margin: float = 0.5,
        scale: float = 30.0,
        drw_epoch: int = -1,
        drw_beta: float = 0.9999,
    ):
        super().__init__(class_counts, drw_epoch, drw_beta)
        if scale <= 0:
            raise ValueError(f"MODEL.LOSS.LDAM_SCALE must be > 0, got {scale}")
        self.scale = scale
        self.register_buffer("margins", ldam_margins(class_counts, max_margin), persistent=False)

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        loss = cfg.MODEL.LOSS
        return dict(
            cls.loss_kwargs(cfg, class_counts),
            max_margin=loss.LDAM_MAX_MARGIN,
            scale=loss.LDAM_SCALE,
        )

    def compute(self, logits, targets, weight):
        shift = torch.zeros_like(logits)
        shift.scatter_(1, targets[:, None], (self.scale * self.margins[targets])[:, None])
        return F.cross_entropy(logits - shift, targets, weight=weight)


@LOSS_REGISTRY.register()
class FocalLoss(LongTailLoss):
    """Focal loss (Lin et al. 2017): ``(1 - p_y)^gamma * (-log p_y)``; gamma 0 is CE.

    With DRW the per-sample terms are averaged with the class weights of their targets
    (``sum w_y l / sum w_y``), exactly as ``F.cross_entropy(weight=)`` averages.
    """

    @configurable
    def __init__(
        self,
        *,
        class_counts=None,
        gamma: float = 1.0,
        drw_epoch: int = -1,
        drw_beta: float = 0.9999,
    ):
        super().__init__(class_counts, drw_epoch, drw_beta)
        if gamma < 0:
            raise ValueError(f"MODEL.LOSS.FOCAL_GAMMA must be >= 0, got {gamma}")
        self.gamma = gamma

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        return dict(cls.loss_kwargs(cfg, class_counts), gamma=cfg.MODEL.LOSS.FOCAL_GAMMA)

    def compute(self, logits, targets, weight):
        log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        # The clamp keeps the gradient finite for gamma < 1 when p_y rounds to 1.
        per_sample = -((1.0 - log_p.exp()).clamp_min(1e-12).pow(self.gamma)) * log_p
        if weight is None:
            return per_sample.mean()
        w = weight[targets]
        return (w * per_sample).sum() / w.sum()

    def compute_soft(self, logits, targets, weight):
        """``sum_c t_c (1 - p_c)^gamma (-log p_c)`` per image (the hard loss on one-hot t)."""
        log_p = F.log_softmax(logits, dim=1)
        focal = (1.0 - log_p.exp()).clamp_min(1e-12).pow(self.gamma)
        return soft_weighted_mean(-targets * focal * log_p, targets, weight)
