"""Distillation teachers: a frozen model attached to a student without becoming part of it.

``FrozenTeacher`` wraps a trained model: no parameter requires grad, it is in eval mode
(BatchNorm included) whatever ``train()`` is called with, and its forward runs under
``torch.inference_mode`` and returns logits (a RIDE teacher's full-ensemble mean).

``TeacherMixin`` gives a meta-architecture ``attach_teacher`` and ``loss_inputs``, and
attaches the teacher of ``MODEL.TEACHER`` in ``before_training`` when its loss distils
(see ``modeling.training_setup``): evaluating a student never needs the teacher's files.
The teacher is stored outside the module tree (not a submodule), so it is never in the
student's ``state_dict`` (checkpoints), ``parameters()`` (optimizer, DDP) or ``train()``
calls; ``.to()``/``.cuda()`` on the student still move it, through ``_apply``.
"""

import logging
import os
from typing import Optional

import torch
from torch import nn

from ..config import CfgNode, ConfigError, get_cfg
from ..utils.file_io import PathManager
from .fold_bn import fold_batch_norms
from .teacher_input import TeacherInput, teacher_input_for

__all__ = ["FrozenTeacher", "TeacherMixin", "teacher_cfg"]

logger = logging.getLogger("ride_dive")


def teacher_cfg(cfg: CfgNode) -> CfgNode:
    """The teacher's config: ``MODEL.TEACHER.CONFIG_FILE`` on the defaults, with the
    student's device, the teacher's weights (a ``zoo:`` name resolved to its verified local
    file), and no router (full-ensemble targets).

    Raises:
        ConfigError: the teacher is not configured.
        FileNotFoundError: its weights file is missing.
    """
    t = cfg.MODEL.TEACHER
    if not t.CONFIG_FILE or not t.WEIGHTS:
        raise ConfigError(
            "This model's loss distils from a teacher (DiVELoss): set MODEL.TEACHER.CONFIG_FILE "
            "(the teacher's config, e.g. its run's config.yaml) and MODEL.TEACHER.WEIGHTS (its "
            f"model_final.pth); got CONFIG_FILE='{t.CONFIG_FILE}', WEIGHTS='{t.WEIGHTS}'"
        )
    weights = PathManager.get_local_path(t.WEIGHTS)
    if not os.path.isfile(weights):
        raise FileNotFoundError(
            f"MODEL.TEACHER.WEIGHTS: no such file '{t.WEIGHTS}'. Train the teacher first "
            "(e.g. configs/<dataset>/bsce_r32.yaml or ride_6e_bsce_*.yaml) and point at its "
            "model_final.pth"
        )
    tcfg = get_cfg()
    tcfg.merge_from_file(t.CONFIG_FILE)
    tcfg.merge_from_list(
        [
            "MODEL.DEVICE",
            cfg.MODEL.DEVICE,
            "MODEL.WEIGHTS",
            weights,
            "MODEL.ROUTER.ENABLED",
            "False",
            "MODEL.ROUTER.TRAIN",
            "False",
            # The teacher of a teacher is not needed to run it.
            "MODEL.TEACHER.CONFIG_FILE",
            "",
            "MODEL.TEACHER.WEIGHTS",
            "",
        ]
    )
    tcfg.freeze()
    return tcfg


class FrozenTeacher(nn.Module):
    """A trained model used only to produce soft targets.

    Args:
        model: the teacher; its eval-mode output is logits or a dict with ``"logits"``.
        fold_bn: fold its BatchNorms into its convolutions (in place; the same function,
            about 10 % off a RIDE-DiVE step on a 2-core CPU, BENCHMARKS.md). False keeps
            the model's modules as they are.
        input_adapter: re-presents the student's batch as the teacher's input (another
            size, normalisation or channel count: ``teacher_input.TeacherInput``); None when
            both take the same input.
    """

    # It sees the (possibly mixed) images, never the targets: whatever loss the teacher was
    # trained with does not matter to the student's MixUp/CutMix (check_soft_targets).
    takes_targets = False

    def __init__(
        self, model: nn.Module, fold_bn: bool = True, input_adapter: Optional[TeacherInput] = None
    ):
        super().__init__()
        self.model = model
        self.input_adapter = input_adapter
        self.model.requires_grad_(False)
        super().train(False)
        # The BatchNorms are fixed affine maps now: folded into the convolutions, they cost
        # no pass of their own on each student batch.
        if fold_bn:
            fold_batch_norms(self.model)

    def train(self, mode: bool = True) -> "FrozenTeacher":
        """Stay in eval mode: a teacher's BN statistics must not drift with the student's."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's logits ``(N, C)`` on ``images`` (no autograd graph)."""
        if self.training or self.model.training:  # defensive: someone flipped a submodule
            super().train(False)
        # inference_mode skips autograd's version counting (cheaper than no_grad); the clone,
        # made outside it, is an ordinary tensor the student's loss may save for backward.
        with torch.inference_mode():
            if self.input_adapter is not None:
                images = self.input_adapter(images)
            out = self.model(images)
            logits = out["logits"] if isinstance(out, dict) else out
        return logits.clone()


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

    def before_training(self, ctx) -> Optional[str]:
        """Attach the teacher of ``MODEL.TEACHER`` when this model's loss distils.

        Raises:
            ConfigError: the teacher is not configured or its classes differ from the data's.
            FileNotFoundError / CheckpointError: its files are missing or unreadable.
        """
        if not self.needs_teacher:
            return None
        tcfg = teacher_cfg(ctx.cfg)
        num_classes = len(ctx.class_counts)
        if tcfg.MODEL.NUM_CLASSES not in (0, num_classes):
            raise ConfigError(
                f"The teacher ({ctx.cfg.MODEL.TEACHER.CONFIG_FILE}) has MODEL.NUM_CLASSES="
                f"{tcfg.MODEL.NUM_CLASSES} but the student's data has {num_classes} classes"
            )
        adapter = teacher_input_for(ctx.cfg, tcfg, ctx.train_dataset)
        teacher = FrozenTeacher(ctx.load_model(tcfg), input_adapter=adapter)
        if ctx.cfg.MODEL.CHANNELS_LAST:
            teacher.to(memory_format=torch.channels_last)
        teacher.to(ctx.device)
        self.attach_teacher(teacher)
        return (
            f"Teacher: {tcfg.MODEL.META_ARCHITECTURE}/{tcfg.MODEL.BACKBONE.NAME} from "
            f"{ctx.cfg.MODEL.TEACHER.WEIGHTS} (frozen, eval mode"
            + (f"; input {adapter.extra_repr()})" if adapter is not None else ")")
        )

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
