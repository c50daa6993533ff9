"""The DiVE loss (He et al. 2021; docs/METHODS.md section 2): distilling virtual examples.

For student logits ``z_s``, teacher logits ``z_t``, temperature ``tau``, power ``p`` and
weight ``alpha``:

    L = (1 - alpha) * base(z_s, y) + alpha * tau^2 * KL(t || softmax(z_s / tau)),
    t = normalize(softmax(z_t / tau)^p) = softmax(p * z_t / tau)

``base`` is Balanced Softmax in DiVE (``DISTILL.BASE_LOSS``). The second form of ``t`` is
algebraically the first (the softmax's normaliser cancels) and needs no power of small
probabilities, so it is exact and stable. The KL compares raw logits on both sides: the
log prior of Balanced Softmax is not added there.
"""

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, configurable
from ..utils.registry import lookup
from .registry import LOSS_REGISTRY
from .virtual_examples import auto_temperature

__all__ = ["DiVELoss", "dive_target", "distillation_kl"]


def dive_target(teacher_logits: torch.Tensor, temperature: float, power: float) -> torch.Tensor:
    """The teacher's power-normalised soft target ``softmax(p * z_t / tau)`` (float32)."""
    return F.softmax(teacher_logits.float() * (power / temperature), dim=1)


def distillation_kl(
    student_logits: torch.Tensor, target: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``KL(target || softmax(z_s / tau))`` averaged over the batch (float32)."""
    student_log = F.log_softmax(student_logits.float() / temperature, dim=1)
    return F.kl_div(student_log, target, reduction="batchmean")


@LOSS_REGISTRY.register()
class DiVELoss(nn.Module):
    """Hard-label loss plus distillation from a teacher's virtual examples.

    Called as ``loss(logits, targets, teacher_logits=z_t)``; returns the named terms
    ``{"loss_cls": (1 - alpha) * base, "loss_distill": alpha * tau^2 * KL}``, which the
    trainer sums and logs separately. The class attribute ``takes_teacher_logits`` tells
    the model to run its teacher and pass its logits in. As a RIDE expert loss
    (``MODEL.LOSS.RIDE.BASE_LOSS``) every expert is distilled from the same teacher target.

    Args:
        base_loss: the hard-label loss (``loss(logits, targets) -> scalar``, ``set_epoch``).
        temperature: tau; None until set (``DISTILL.TEMPERATURE: auto`` sets it from the
            teacher's virtual examples before training).
        power: p.
        alpha: weight of the distillation term, in [0, 1].
    """

    takes_teacher_logits = True

    @configurable
    def __init__(
        self,
        *,
        base_loss: nn.Module,
        temperature: Optional[float] = 3.0,
        power: float = 0.5,
        alpha: float = 0.5,
    ):
        super().__init__()
        if temperature is not None and temperature <= 0:
            raise ValueError(f"DiVE temperature must be > 0, got {temperature}")
        if power <= 0:
            raise ValueError(f"DiVE power must be > 0, got {power}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"DiVE alpha must be in [0, 1], got {alpha}")
        self.base_loss = base_loss
        self.temperature = temperature
        self.power = float(power)
        self.alpha = float(alpha)

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        d = cfg.DISTILL
        if d.BASE_LOSS in ("DiVELoss", "RIDELoss"):
            raise ConfigError(f"DISTILL.BASE_LOSS cannot be '{d.BASE_LOSS}'")
        base_cls = lookup(LOSS_REGISTRY, d.BASE_LOSS, "DISTILL.BASE_LOSS")
        return {
            "base_loss": base_cls(cfg, class_counts=class_counts),
            "temperature": None if d.TEMPERATURE == "auto" else float(d.TEMPERATURE),
            "power": d.POWER,
            "alpha": d.ALPHA,
        }

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the hard-label loss (its DRW schedule, if any)."""
        self.base_loss.set_epoch(epoch)

    def before_training(self, ctx) -> Optional[str]:
        """Resolve ``DISTILL.TEMPERATURE: auto`` from the attached teacher's virtual
        examples on the training split (the same pick, again, on ``--resume``)."""
        if self.temperature is not None:
            return None
        teacher = getattr(ctx.model, "teacher", None)
        if teacher is None:
            raise RuntimeError("DISTILL.TEMPERATURE auto needs the teacher attached first")
        cfg = ctx.cfg
        self.temperature = auto_temperature(
            teacher,
            ctx.loader(ctx.train_dataset),
            ctx.class_counts,
            ctx.device,
            self.power,
            ctx.autocast_dtype,
            cfg.TEST.MANY_THRESHOLD,
            cfg.TEST.FEW_THRESHOLD,
        )
        return f"DISTILL.TEMPERATURE auto -> tau = {self.temperature:g} (p = {self.power:g})"

    def result_entries(self) -> Dict[str, float]:
        """What ``results.json`` records of this loss: the temperature it used."""
        return {} if self.temperature is None else {"distill_temperature": self.temperature}

    def fitted_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The raw logits: the distillation term (weight ``alpha * tau^2``, 4.5 at the
        defaults against the hard-label term's 0.5) fits ``softmax(z / tau)`` to the
        teacher's target on the raw logits, so that is the space this loss trains."""
        return logits

    def forward(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        teacher_logits: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Named loss terms.

        Args:
            logits: student logits ``(N, C)``.
            targets: class indices ``(N,)``.
            teacher_logits: the teacher's logits ``(N, C)`` on the same (augmented) images.
        """
        if teacher_logits is None:
            raise RuntimeError(
                "DiVELoss needs the teacher's logits: set MODEL.TEACHER.CONFIG_FILE and "
                "MODEL.TEACHER.WEIGHTS (the trainer then runs the teacher on every batch)"
            )
        if self.temperature is None:
            raise RuntimeError(
                "DiVELoss temperature is 'auto' and was not resolved: its before_training "
                "sets it from the teacher's virtual examples (modeling.training_setup)"
            )
        if teacher_logits.shape != logits.shape:
            raise ValueError(
                f"teacher logits {tuple(teacher_logits.shape)} do not match the student's "
                f"{tuple(logits.shape)}: teacher and student must have the same classes"
            )
        tau = self.temperature
        target = dive_target(teacher_logits.detach(), tau, self.power)
        return {
            "loss_cls": (1.0 - self.alpha) * self.base_loss(logits, targets),
            "loss_distill": self.alpha * tau * tau * distillation_kl(logits, target, tau),
        }
