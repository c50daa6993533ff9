"""Setting up a distillation run: build the teacher, attach it, resolve ``auto`` temperatures.

Called by ``DefaultTrainer.train`` before the first training step, and only when the
model's loss distils (``model.needs_teacher``): evaluating a student never needs the
teacher's files.
"""
import logging
import os
from typing import List, Sequence

import torch
from torch import nn

from ..checkpoint import Checkpointer, unwrap_model
from ..config import CfgNode, ConfigError, get_cfg
from ..modeling import build_model
from ..modeling.distill_loss import DiVELoss
from ..modeling.teacher import FrozenTeacher

__all__ = [
    "build_teacher",
    "distill_losses",
    "distill_temperature",
    "prepare_distillation",
    "teacher_cfg",
]

logger = logging.getLogger("ride_dive")


def teacher_cfg(cfg: CfgNode) -> CfgNode:
    """The teacher's config: ``MODEL.TEACHER.CONFIG_FILE`` on the defaults, with the
    student's device, the teacher's weights, and no router (full-ensemble targets)."""
    t = cfg.MODEL.TEACHER
    if not t.CONFIG_FILE or not t.WEIGHTS:
        raise ConfigError(
            "This model's loss distils from a teacher (DiVELoss): set MODEL.TEACHER.CONFIG_FILE "
            "(the teacher's config, e.g. its run's config.yaml) and MODEL.TEACHER.WEIGHTS (its "
            f"model_final.pth); got CONFIG_FILE='{t.CONFIG_FILE}', WEIGHTS='{t.WEIGHTS}'"
        )
    weights = t.WEIGHTS
    if weights.startswith("zoo:"):  # a published teacher: download and verify it once here
        from ..model_zoo import resolve_weights

        weights = resolve_weights(weights)
    if not os.path.isfile(weights):
        raise FileNotFoundError(
            f"MODEL.TEACHER.WEIGHTS: no such file '{t.WEIGHTS}'. Train the teacher first "
            "(e.g. configs/<dataset>/bsce_r32.yaml or ride_6e_bsce_*.yaml) and point at its "
            "model_final.pth"
        )
    tcfg = get_cfg()
    tcfg.merge_from_file(t.CONFIG_FILE)
    tcfg.merge_from_list([
        "MODEL.DEVICE", cfg.MODEL.DEVICE,
        "MODEL.WEIGHTS", weights,
        "MODEL.ROUTER.ENABLED", "False",
        "MODEL.ROUTER.TRAIN", "False",
        # The teacher of a teacher is not needed to run it.
        "MODEL.TEACHER.CONFIG_FILE", "",
        "MODEL.TEACHER.WEIGHTS", "",
    ])
    tcfg.freeze()
    return tcfg


def build_teacher(cfg: CfgNode, class_counts: Sequence[int]) -> FrozenTeacher:
    """Build the teacher from its own config and load its weights (``weights_only``).

    Raises:
        ConfigError: the teacher is not configured, or its classes differ from the data's.
        FileNotFoundError: the weights file is missing.
        CheckpointError / CheckpointMismatchError: unreadable or mismatched weights.
    """
    tcfg = teacher_cfg(cfg)
    if tcfg.MODEL.NUM_CLASSES not in (0, len(class_counts)):
        raise ConfigError(
            f"The teacher ({cfg.MODEL.TEACHER.CONFIG_FILE}) has MODEL.NUM_CLASSES="
            f"{tcfg.MODEL.NUM_CLASSES} but the student's data has {len(class_counts)} classes"
        )
    model = build_model(tcfg, class_counts)
    Checkpointer(model, os.path.dirname(tcfg.MODEL.WEIGHTS)).load(
        tcfg.MODEL.WEIGHTS, checkpointables=[]
    )
    logger.info(
        f"Teacher: {tcfg.MODEL.META_ARCHITECTURE}/{tcfg.MODEL.BACKBONE.NAME} from "
        f"{cfg.MODEL.TEACHER.WEIGHTS} (frozen, eval mode)"
    )
    return FrozenTeacher(model)


def distill_losses(model: nn.Module) -> List[DiVELoss]:
    """Every ``DiVELoss`` in the model (one, or the one shared by RIDE's experts)."""
    return [m for m in unwrap_model(model).modules() if isinstance(m, DiVELoss)]


def prepare_distillation(cfg: CfgNode, model: nn.Module, train_dataset, class_counts,
                         device) -> None:
    """Attach the teacher to ``model`` and resolve ``DISTILL.TEMPERATURE: auto``.

    Does nothing for a model whose loss does not distil. The automatic temperature is
    chosen from the teacher's virtual examples on the training set (METHODS.md 6) and
    written into the model's DiVE losses; it is computed again, identically, on resume.
    """
    model = unwrap_model(model)
    if not getattr(model, "needs_teacher", False):
        return
    teacher = build_teacher(cfg, class_counts)
    teacher.to(device)
    if cfg.MODEL.CHANNELS_LAST:
        teacher.to(memory_format=torch.channels_last)
    model.attach_teacher(teacher)
    if cfg.DISTILL.TEMPERATURE == "auto":
        from ..analysis.virtual_examples import choose_temperature

        tau = float(choose_temperature(cfg, teacher, train_dataset, class_counts, device))
        for loss in distill_losses(model):
            loss.temperature = tau
        logger.info(f"DISTILL.TEMPERATURE auto -> tau = {tau:g} (p = {cfg.DISTILL.POWER:g})")


def distill_temperature(model: nn.Module):
    """The DiVE temperature in use (None when the model does not distil)."""
    losses = distill_losses(model)
    return losses[0].temperature if losses else None
