"""``RIDE``: a multi-expert classifier with an optional expert router (docs/METHODS.md 2-4).

Train mode returns the RIDE loss terms (or, in the router stage, ``{"loss_router"}``).
Eval mode returns a dict: ``"logits"`` (mean of the computed experts' logits, what the
evaluator scores), ``"experts_used"`` ``(N,)``, ``"num_experts"`` (E, an int) and, when every
expert ran, ``"expert_logits"`` ``(E, N, C)`` so that the evaluator can report each expert's
own accuracy. With a router,
eval mode runs expert 1 and continues a sample to expert k+1 only when router k's
probability exceeds the threshold (early exit).
"""

import logging
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ...config import ConfigError, configurable
from ...utils.modules import inference_context
from ..backbones.multi_expert import MultiExpertBackbone
from ..build import build_backbone, build_head, build_loss
from ..complexity import count_macs
from ..registry import META_ARCH_REGISTRY
from ..router import ExpertRouter, router_labels, threshold_logit
from ..teacher import TeacherMixin
from .classifier import resolve_num_classes

__all__ = ["RIDE", "ExpertPrefix"]

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class RIDE(TeacherMixin, nn.Module):
    """Shared trunk, E experts with their own heads, RIDE loss, optional router.

    With a distilling expert loss (RIDE-DiVE) every expert learns from the attached
    teacher's logits (see ``TeacherMixin``).

    Args:
        backbone: a ``MultiExpertBackbone`` (features ``(E, N, D)``).
        heads: E heads, one per expert.
        loss: ``loss(expert_logits (E, N, C), targets) -> dict of named terms``.
        router: an ``ExpertRouter`` or None (always the full ensemble).
        router_threshold: early-exit probability threshold.
        train_router: router stage: every other parameter is frozen, BN statistics
            included, and the train-mode forward returns ``{"loss_router"}``.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: MultiExpertBackbone,
        heads: Sequence[nn.Module],
        loss: nn.Module,
        router: Optional[ExpertRouter] = None,
        router_threshold: float = 0.5,
        train_router: bool = False,
    ):
        super().__init__()
        if not isinstance(backbone, MultiExpertBackbone):
            raise ConfigError(
                f"RIDE needs a multi-expert backbone (RIDEResNet32, RIDEResNet50, "
                f"RIDEResNeXt50), got {type(backbone).__name__}"
            )
        if len(heads) != backbone.num_experts:
            raise ValueError(f"{len(heads)} heads for {backbone.num_experts} experts")
        if train_router and router is None:
            raise ValueError("train_router needs a router")
        self.backbone = backbone
        self.heads = nn.ModuleList(heads)
        self.loss = loss
        self.router = router
        self.router_threshold = router_threshold
        self.train_router = train_router
        # Checkpoint-loading policy (see checkpoint.model_state.load_model_state): the
        # router stage starts from a stage-1 file without router weights, and a model built
        # without a router may read a file that has them.
        self.newly_initialized_prefixes: Tuple[str, ...] = ("router.",) if train_router else ()
        self.unused_checkpoint_prefixes: Tuple[str, ...] = (
            () if router is not None else ("router.",)
        )
        # Per-expert second stages: an LWS head per expert adds its scales.
        self.newly_initialized_prefixes += tuple(
            f"heads.{i}.{k}"
            for i, head in enumerate(self.heads)
            for k in getattr(head, "newly_initialized_keys", ())
        )
        if train_router:
            self.backbone.freeze()  # weights and BN statistics
            self.heads.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg, class_counts: Optional[Sequence[int]] = None):
        num_classes = resolve_num_classes(cfg, class_counts)
        backbone = build_backbone(cfg)
        if not isinstance(backbone, MultiExpertBackbone):
            raise ConfigError(
                f"MODEL.META_ARCHITECTURE='RIDE' needs a multi-expert MODEL.BACKBONE.NAME "
                f"(RIDEResNet32, RIDEResNet50, RIDEResNeXt50), got '{cfg.MODEL.BACKBONE.NAME}'"
            )
        experts, dim = backbone.num_experts, backbone.out_features
        if cfg.MODEL.ROUTER.TRAIN and not cfg.MODEL.WEIGHTS:
            logger.warning(
                "MODEL.ROUTER.TRAIN without MODEL.WEIGHTS: the routers would learn on randomly "
                "initialised experts; give the stage-1 checkpoint in MODEL.WEIGHTS"
            )
        router = None
        if cfg.MODEL.ROUTER.ENABLED:
            router = ExpertRouter(
                cfg, num_experts=experts, in_features=dim, num_classes=num_classes
            )
        loss = build_loss(cfg, class_counts)
        if not getattr(loss, "takes_expert_logits", False):
            raise ConfigError(
                f"MODEL.META_ARCHITECTURE='RIDE' needs a loss over all experts' logits such as "
                f"'RIDELoss' (set its per-expert loss in MODEL.LOSS.RIDE.BASE_LOSS), got "
                f"MODEL.LOSS.NAME='{cfg.MODEL.LOSS.NAME}'"
            )
        heads = [build_head(cfg, dim, num_classes) for _ in range(experts)]
        if getattr(heads[0], "evaluation_only", False):
            raise ConfigError(
                f"MODEL.HEAD.NAME='{cfg.MODEL.HEAD.NAME}' is an evaluation-only head, supported "
                "for single-head models (META_ARCHITECTURE 'Classifier') only, not per RIDE "
                "expert"
            )
        return {
            "backbone": backbone,
            "heads": heads,
            "loss": loss,
            "router": router,
            "router_threshold": cfg.MODEL.ROUTER.THRESHOLD,
            "train_router": cfg.MODEL.ROUTER.TRAIN,
        }

    @property
    def needs_teacher(self) -> bool:
        """A distilling loss needs the teacher, except in the router stage (no loss)."""
        return not self.train_router and bool(getattr(self.loss, "takes_teacher_logits", False))

    @property
    def supports_soft_targets(self) -> bool:
        """Not in the router stage: router labels ask whether an expert's argmax is *the*
        class, which a mixed (MixUp/CutMix) target does not have."""
        return not self.train_router

    soft_targets_refusal = "the router stage's labels need each image's one true class"

    @property
    def num_experts(self) -> int:
        return self.backbone.num_experts

    def set_epoch(self, epoch: int) -> None:
        """Forward the training epoch to the loss (DRW and the diversity temperature)."""
        self.loss.set_epoch(epoch)

    def train(self, mode: bool = True) -> "RIDE":
        """Set the mode; in the router stage everything but the router stays in eval mode."""
        super().train(mode)
        if self.train_router:  # frozen parts keep their BN statistics in the router stage
            self.heads.train(False)
        return self

    def _heads(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(k, N, C)`` of the first k experts from their features ``(k, N, D)``."""
        return torch.stack([head(f) for head, f in zip(self.heads, features)])

    def expert_outputs(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Every expert's pooled features ``(E, N, D)`` and logits ``(E, N, C)``."""
        features = self.backbone(images)
        return features, self._heads(features)

    def forward(
        self, images: torch.Tensor, targets: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """Loss terms in train mode; ``{"logits", "experts_used", ...}`` in eval mode."""
        if self.training:
            if targets is None:
                raise ValueError("RIDE in train mode needs targets; call model.eval() first")
            if self.train_router:
                return {"loss_router": self._router_loss(images, targets)}
            expert_logits = self.expert_outputs(images)[1]
            return self.loss(expert_logits, targets, **self.loss_inputs(images))
        if self.router is not None:
            return self.early_exit(images, self.router_threshold)
        expert_logits = self.expert_outputs(images)[1].float()
        n = images.shape[0]
        return {
            "logits": expert_logits.mean(dim=0),
            "expert_logits": expert_logits,
            "experts_used": torch.full(
                (n,), self.num_experts, dtype=torch.long, device=images.device
            ),
            "num_experts": self.num_experts,
        }

    def _router_loss(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # everything but the router is frozen
            features, logits = self.expert_outputs(images)
        router_logits = self.router(features, logits)
        return self.router.loss(router_logits, router_labels(logits, targets))

    def early_exit(self, images: torch.Tensor, threshold: float) -> Dict[str, torch.Tensor]:
        """Router-driven inference: stop each sample at the first router that says "stop".

        Args:
            images: ``(N, C, H, W)``.
            threshold: continue while the router probability exceeds this (0 = always).

        Returns:
            ``{"logits": mean logits of each sample's computed experts (N, C),
            "experts_used": (N,) in [1, E], "num_experts": E}``.
        """
        if self.router is None:
            raise RuntimeError("early_exit needs a router (MODEL.ROUTER.ENABLED)")
        cut = threshold_logit(threshold)
        shared = self.backbone.forward_trunk(images)
        feature = self.backbone.forward_experts(shared, 0, 1)[0]
        sums = self.heads[0](feature).float()
        used = torch.ones(images.shape[0], dtype=torch.long, device=images.device)
        active = torch.arange(images.shape[0], device=images.device)
        for k in range(1, self.num_experts):
            go = self.router.logit(k - 1, feature, sums[active] / k) > cut
            if not bool(go.any()):
                break
            active = active[go]
            feature = self.backbone.forward_experts(shared[active], k, k + 1)[0]
            sums.index_add_(0, active, self.heads[k](feature).float())
            used[active] += 1
        return {
            "logits": sums / used.unsqueeze(1),
            "experts_used": used,
            "num_experts": self.num_experts,
        }

    def forward_all(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Every expert's logits ``(E, N, C)`` and every router's logits ``(E-1, N)``.

        What early exit would do at any threshold follows from these (see
        ``router.experts_used``), so one pass serves a whole threshold sweep.
        """
        features, logits = self.expert_outputs(images)
        out = {"expert_logits": logits.float()}
        if self.router is not None:
            out["router_logits"] = self.router(features, logits).float()
        return out

    def inference_macs(self, input_shape: Sequence[int]) -> float:
        """GMACs per image of the router-free full ensemble (every expert, no router)."""
        # count_macs sets one mode on the whole tree; the context gives every submodule its
        # own flag back (the router stage keeps its frozen parts in eval mode).
        with inference_context(self):
            return count_macs(ExpertPrefix(self, self.num_experts, routers=False), input_shape)

    def forward_first_experts(
        self, images: torch.Tensor, k: int, routers: bool = True
    ) -> Tuple[torch.Tensor, ...]:
        """The compute of a sample that runs experts 1..k (for counting MACs).

        Returns the mean logits of experts 1..k and, with a router (and ``routers``), the
        logits of the routers such a sample consults: 1..k, at most E-1.
        """
        features = self.backbone.forward_experts(self.backbone.forward_trunk(images), 0, k)
        logits = self._heads(features)
        if self.router is None or not routers:
            return (logits.mean(dim=0),)
        means = logits.float().cumsum(dim=0)
        consulted = min(k, self.num_experts - 1)
        router_logits = [
            self.router.logit(j, features[j], means[j] / (j + 1)) for j in range(consulted)
        ]
        return (logits.mean(dim=0), torch.stack(router_logits))


class ExpertPrefix(nn.Module):
    """The compute path of a sample that runs experts 1..k of a RIDE model (what fvcore
    traces to count its MACs): ``forward(images) = model.forward_first_experts(images, k,
    routers)``."""

    def __init__(self, model: RIDE, k: int, routers: bool):
        super().__init__()
        self.model, self.k, self.routers = model, k, routers

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.model.forward_first_experts(images, self.k, routers=self.routers)
