"""Distillation teachers: a frozen model attached to a student without becoming part of it.

``FrozenTeacher`` wraps a trained model: no parameter requires grad, it is in eval mode
(BatchNorm included) whatever ``train()`` is called with, and its forward runs under
``torch.no_grad`` and returns logits (a RIDE teacher's full-ensemble mean).

``TeacherMixin`` gives a meta-architecture ``attach_teacher`` and ``teacher_logits``. The
teacher is stored outside the module tree (not a submodule), so it is never in the
student's ``state_dict`` (checkpoints), ``parameters()`` (optimizer, DDP) or ``train()``
calls; ``.to()``/``.cuda()`` on the student still move it, through ``_apply``.
"""
from typing import Optional

import torch
from torch import nn

__all__ = ["FrozenTeacher", "TeacherMixin"]


class FrozenTeacher(nn.Module):
    """A trained model used only to produce soft targets.

    Args:
        model: the teacher; its eval-mode output is logits or a dict with ``"logits"``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.model.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenTeacher":
        """Stay in eval mode: a teacher's BN statistics must not drift with the student's."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's logits ``(N, C)`` on ``images`` (no autograd graph)."""
        if self.training or self.model.training:  # defensive: someone flipped a submodule
            super().train(False)
        with torch.no_grad():
            out = self.model(images)
        return out["logits"] if isinstance(out, dict) else out


class TeacherMixin:
    """For ``nn.Module`` meta-architectures whose loss may distil from a teacher.

    Put it before ``nn.Module`` in the bases. The loss asks for teacher logits through a
    truthy ``takes_teacher_logits`` attribute.
    """

    _teacher: Optional[FrozenTeacher] = None

    @property
    def teacher(self) -> Optional[FrozenTeacher]:
        """The attached teacher, or None."""
        return self._teacher

    @property
    def needs_teacher(self) -> bool:
        """Whether this model's loss distils from a teacher."""
        return bool(getattr(self.loss, "takes_teacher_logits", False))

    def attach_teacher(self, teacher: Optional[FrozenTeacher]) -> None:
        """Use ``teacher`` in training from now on (None detaches)."""
        if teacher is not None and not isinstance(teacher, FrozenTeacher):
            raise TypeError(f"expected a FrozenTeacher, got {type(teacher).__name__}")
        # object.__setattr__: keep it out of nn.Module's registry of submodules.
        object.__setattr__(self, "_teacher", teacher)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._teacher is not None:
            self._teacher._apply(fn, *args, **kwargs)
        return self

    def loss_inputs(self, images: torch.Tensor) -> dict:
        """Extra keyword arguments for the loss: the teacher's logits when it needs them."""
        if not self.needs_teacher:
            return {}
        if self._teacher is None:
            raise RuntimeError(
                f"{type(self).__name__}'s loss distils from a teacher, but none is attached: "
                "set MODEL.TEACHER.CONFIG_FILE and MODEL.TEACHER.WEIGHTS"
            )
        return {"teacher_logits": self._teacher(images)}
