"""The RIDE loss (Wang et al. 2021; docs/METHODS.md section 2): per-expert base loss + diversity.

For expert i with logits ``z_i`` and the detached ensemble mean ``z_mean``:

    L_i = base(z_i, y) + lambda * mean(T)^2 * KL(softmax(z_mean / T) || softmax(z_i / T))

summed over experts. ``T`` is 1 before ``MODEL.LOSS.RIDE.TEMPERATURE_EPOCH`` and afterwards
the distribution-aware per-class temperature ``T_c = T_base * w_c`` (broadcast over the class
dimension of the softmax). With ``lambda = 0`` the diversity term is absent, and the loss is
exactly the sum of the experts' base losses (the reference code switches to a different
loss there; this one does not).

Where the KL is measured (``diversity_space``). RIDE's code compares raw logits, which is the
space its LDAM base loss fits. A loss that adds the log prior inside (Balanced Softmax, the
RIDE-DiVE teacher's base loss) fits ``softmax(z + log n)`` instead, and the raw logits then
have slack the loss does not see: an expert can raise its raw tail-class logits on head
images by up to ``log(n_head / n_tail)`` at little cost to its base loss, which the diversity
term rewards. Experts then drift into individually wrong raw predictions whose mean alone is
right (docs/RIDE_DIVERSITY.md measures it). ``"fitted"`` (the default) compares
``base_loss.fitted_logits(z)`` instead, the logits the base loss trains, so that disagreement
always costs base loss; for LDAM, CE, focal and DiVE those are the raw logits, so RIDE's
recipe is unchanged. ``"raw"`` is RIDE's code as it is.
"""

import logging
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, configurable
from ..config.checks import DIVERSITY_SPACES
from ..utils.registry import lookup
from .registry import LOSS_REGISTRY

logger = logging.getLogger(__name__)

__all__ = ["RIDELoss", "distribution_aware_temperatures", "diversity_kl"]


def distribution_aware_temperatures(
    class_counts: Sequence[int], alpha: float, base: float = 1.0
) -> torch.Tensor:
    """Per-class temperatures ``T_c = base * w_c`` of the RIDE diversity term.

    ``w_c = (alpha * C * pi_c + 1 - alpha) / max_c(alpha * C * pi_c + 1 - alpha)`` with
    ``pi_c = n_c / N``: head classes keep temperature ``base``, tail classes get a lower one,
    which sharpens their distributions and so strengthens the diversity push on them.

    Args:
        class_counts: training images per class.
        alpha: in [0, 1]; 0 gives ``base`` for every class.
        base: ``T_base`` (> 0).

    Returns:
        Float32 tensor ``(C,)``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"MODEL.LOSS.RIDE.TEMPERATURE_ALPHA must be in [0, 1], got {alpha}")
    if base <= 0:
        raise ValueError(f"MODEL.LOSS.RIDE.TEMPERATURE_BASE must be > 0, got {base}")
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0 or bool((counts <= 0).any()):
        raise ValueError(f"class_counts must be positive counts, got {class_counts!r}")
    prior = counts / counts.sum()
    w = alpha * counts.numel() * prior + 1.0 - alpha
    return (base * w / w.max()).float()


def diversity_kl(
    expert_logits: torch.Tensor, mean_logits: torch.Tensor, temperature: torch.Tensor
) -> torch.Tensor:
    """``KL(softmax(mean_logits / T) || softmax(expert_logits / T))``, averaged over the batch.

    Args:
        expert_logits: ``(N, C)`` logits of one expert.
        mean_logits: ``(N, C)`` ensemble logits (the target side; detach it first).
        temperature: a scalar or per-class ``(C,)`` temperature, broadcast over classes.
    """
    target_log = F.log_softmax(mean_logits / temperature, dim=1)
    expert_log = F.log_softmax(expert_logits / temperature, dim=1)
    return F.kl_div(expert_log, target_log, reduction="batchmean", log_target=True)


def _temperature_epoch(cfg) -> int:
    """``MODEL.LOSS.RIDE.TEMPERATURE_EPOCH``; -2 (older configs) follows ``DRW_EPOCH``."""
    epoch = cfg.MODEL.LOSS.RIDE.TEMPERATURE_EPOCH
    if epoch != -2:
        return epoch
    if cfg.MODEL.LOSS.DRW_EPOCH >= 0:
        logger.info(
            "MODEL.LOSS.RIDE.TEMPERATURE_EPOCH is not set: the diversity temperature starts "
            f"with DRW (MODEL.LOSS.DRW_EPOCH = {cfg.MODEL.LOSS.DRW_EPOCH}), as before the key "
            "existed; set it to make that explicit"
        )
    return cfg.MODEL.LOSS.DRW_EPOCH


@LOSS_REGISTRY.register()
class RIDELoss(nn.Module):
    """Sum over experts of a base loss plus the (negative-weighted) diversity KL.

    Unlike the single-head losses it takes all experts' logits ``(E, N, C)`` and returns a
    dict of named terms, ``loss_base_e{i}`` and (when ``diversity_weight != 0``)
    ``loss_div_e{i}``, whose sum is the RIDE loss; the trainer logs each term. A base loss
    that returns named terms itself (``DiVELoss``) gives ``{name}_e{i}`` instead of
    ``loss_base_e{i}``.

    The class attribute ``takes_expert_logits`` tells ``RIDE`` that a loss has this
    calling convention.

    Args:
        base_loss: a single-head loss (``loss(logits, targets) -> scalar`` with
            ``set_epoch``) applied to every expert; it keeps its own DRW schedule.
        class_counts: training images per class (needed for the temperatures when
            ``temperature_epoch >= 0``).
        diversity_weight: lambda (< 0 rewards diversity; 0 removes the term).
        temperature_alpha: alpha of :func:`distribution_aware_temperatures`.
        temperature_base: ``T_base``.
        temperature_epoch: first epoch of the per-class temperatures; < 0 =
            never, T = 1 throughout.
        diversity_space: ``"fitted"`` (the KL on the base loss's ``fitted_logits``) or
            ``"raw"`` (on the raw logits, as RIDE's code).
    """

    takes_expert_logits = True

    @configurable
    def __init__(
        self,
        *,
        base_loss: nn.Module,
        class_counts: Optional[Sequence[int]] = None,
        diversity_weight: float = -0.45,
        temperature_alpha: float = 0.05,
        temperature_base: float = 1.0,
        temperature_epoch: int = -1,
        diversity_space: str = "fitted",
    ):
        super().__init__()
        if diversity_space not in DIVERSITY_SPACES:
            raise ValueError(
                f"MODEL.LOSS.RIDE.DIVERSITY_SPACE must be one of {DIVERSITY_SPACES}, "
                f"got {diversity_space!r}"
            )
        self.diversity_space = diversity_space
        self.base_loss = base_loss
        self.diversity_weight = float(diversity_weight)
        self.temperature_epoch = temperature_epoch
        self.epoch = 0
        temperatures = None
        if temperature_epoch >= 0:
            if class_counts is None:
                raise ValueError("RIDELoss temperatures need class_counts")
            temperatures = distribution_aware_temperatures(
                class_counts, temperature_alpha, temperature_base
            )
        # Derived from the dataset, so never saved (like the other losses' count buffers).
        self.register_buffer("class_temperatures", temperatures, persistent=False)

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        r = cfg.MODEL.LOSS.RIDE
        if r.BASE_LOSS == "RIDELoss":
            raise ConfigError("MODEL.LOSS.RIDE.BASE_LOSS cannot be 'RIDELoss'")
        base_cls = lookup(LOSS_REGISTRY, r.BASE_LOSS, "MODEL.LOSS.RIDE.BASE_LOSS")
        return {
            "base_loss": base_cls(cfg, class_counts=class_counts),
            "class_counts": class_counts,
            "diversity_weight": r.DIVERSITY_WEIGHT,
            "temperature_alpha": r.TEMPERATURE_ALPHA,
            "temperature_base": r.TEMPERATURE_BASE,
            "temperature_epoch": _temperature_epoch(cfg),
            "diversity_space": r.DIVERSITY_SPACE,
        }

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss (and its base loss) the current 0-based training epoch."""
        self.epoch = epoch
        self.base_loss.set_epoch(epoch)

    def temperature(self) -> torch.Tensor:
        """The diversity temperature now: per-class ``(C,)`` from the temperature epoch, else 1."""
        if self.class_temperatures is not None and self.epoch >= self.temperature_epoch:
            return self.class_temperatures
        return torch.ones(())

    @property
    def takes_teacher_logits(self) -> bool:
        """Whether the base loss distils from a teacher (``DiVELoss``: RIDE-DiVE)."""
        return bool(getattr(self.base_loss, "takes_teacher_logits", False))

    def forward(
        self,
        expert_logits: torch.Tensor,
        targets: torch.Tensor,
        teacher_logits: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Named loss terms of every expert.

        Args:
            expert_logits: ``(E, N, C)`` logits of the E experts.
            targets: ``(N,)`` class indices.
            teacher_logits: ``(N, C)`` teacher logits, passed to a distilling base loss
                (each expert is distilled from the same target).
        """
        if expert_logits.dim() != 3:
            raise ValueError(
                f"RIDELoss takes expert logits (E, N, C), got shape {tuple(expert_logits.shape)}"
            )
        logits = expert_logits.float()
        extra = {"teacher_logits": teacher_logits} if self.takes_teacher_logits else {}
        losses: Dict[str, torch.Tensor] = {}
        for i, z in enumerate(logits):
            base = self.base_loss(z, targets, **extra)
            if isinstance(base, dict):  # several named terms (DiVE: loss_cls, loss_distill)
                losses.update({f"{name}_e{i}": value for name, value in base.items()})
            else:
                losses[f"loss_base_e{i}"] = base
        if self.diversity_weight == 0.0:
            return losses
        temperature = self.temperature().to(logits.device)
        # A tensor, not .item(): no device sync per step.
        scale = self.diversity_weight * temperature.mean().square()
        compared = self.diversity_logits(logits)
        mean_logits = compared.mean(dim=0).detach()
        for i, z in enumerate(compared):
            losses[f"loss_div_e{i}"] = scale * diversity_kl(z, mean_logits, temperature)
        return losses

    def diversity_logits(self, expert_logits: torch.Tensor) -> torch.Tensor:
        """The ``(E, N, C)`` logits the diversity KL compares (``diversity_space``)."""
        # A base loss without fitted_logits (a contributor's) is taken to fit the raw logits.
        fitted = getattr(self.base_loss, "fitted_logits", None)
        if self.diversity_space == "raw" or fitted is None:
            return expert_logits
        return fitted(expert_logits)  # fitted_logits broadcasts over leading dimensions
