"""``Classifier``: backbone -> head, trained with one loss (CE, BSCE, LDAM, focal, cRT, LWS)."""

from typing import Dict, Optional, Sequence, Union

import torch
from torch import nn

from ...config import ConfigError, configurable
from ..build import build_backbone, build_head, build_loss
from ..registry import META_ARCH_REGISTRY
from ..teacher import TeacherMixin

__all__ = ["Classifier", "resolve_num_classes"]


def resolve_num_classes(cfg, class_counts: Optional[Sequence[int]]) -> int:
    """``MODEL.NUM_CLASSES`` if set (> 0), else ``len(class_counts)``; they must agree.

    Raises:
        ConfigError: when neither gives the number of classes, or they disagree.
    """
    num_classes = cfg.MODEL.NUM_CLASSES
    if class_counts is not None and num_classes > 0 and num_classes != len(class_counts):
        raise ConfigError(
            f"MODEL.NUM_CLASSES={num_classes} but the training set has {len(class_counts)} "
            "classes; set MODEL.NUM_CLASSES to 0 to take it from the dataset"
        )
    if num_classes > 0:
        return num_classes
    if class_counts is None:
        raise ConfigError("MODEL.NUM_CLASSES is 0 and no class_counts were given")
    return len(class_counts)


@META_ARCH_REGISTRY.register()
class Classifier(TeacherMixin, nn.Module):
    """A single-head image classifier.

    In train mode ``forward(images, targets)`` returns ``{"loss_cls": loss}`` (or the loss's
    own named terms when it returns a dict, e.g. DiVE's, which distils from the attached
    teacher: see ``TeacherMixin``); in eval mode
    ``forward(images)`` returns float32 logits ``(N, C)``. A frozen backbone (decoupled
    second stages) runs without autograd, which makes those stages much cheaper.

    Args:
        backbone: maps images to ``(N, D)`` features.
        head: maps features to ``(N, C)`` logits.
        loss: ``loss(logits, targets) -> scalar`` with ``set_epoch(epoch)``.
    """

    @configurable
    def __init__(self, *, backbone: nn.Module, head: nn.Module, loss: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.loss = loss
        # Checkpoint-loading policy (see checkpoint.model_state.load_model_state): a second
        # stage's head may add state (LWS scales) or ignore the stage-1 classifier (NCM).
        self.newly_initialized_prefixes = tuple(
            f"head.{k}" for k in getattr(head, "newly_initialized_keys", ())
        )
        self.unused_checkpoint_prefixes = tuple(
            f"head.{k}" for k in getattr(head, "unused_checkpoint_keys", ())
        )

    @classmethod
    def from_config(cls, cfg, class_counts: Optional[Sequence[int]] = None):
        num_classes = resolve_num_classes(cfg, class_counts)
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "head": build_head(cfg, backbone.out_features, num_classes),
            "loss": build_loss(cfg, class_counts),
        }

    def set_epoch(self, epoch: int) -> None:
        """Forward the training epoch to the loss (DRW and other schedules)."""
        self.loss.set_epoch(epoch)

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(N, D)`` (pooled, normalised if the backbone is)."""
        frozen = getattr(self.backbone, "frozen", False)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            return self.backbone(images)

    def forward(
        self, images: torch.Tensor, targets: Optional[torch.Tensor] = None
    ) -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        """Losses in train mode, float32 logits in eval mode.

        Args:
            images: ``(N, C, H, W)``.
            targets: class indices ``(N,)``; required in train mode.
        """
        if self.training and targets is None:
            raise ValueError("Classifier in train mode needs targets; call model.eval() first")
        logits = self.head(self.extract_features(images))
        if self.training:
            loss = self.loss(logits, targets, **self.loss_inputs(images))
            return loss if isinstance(loss, dict) else {"loss_cls": loss}
        return logits.float()
