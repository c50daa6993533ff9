"""``MultiExpertBackbone``: a shared trunk followed by E parallel expert branches (RIDE)."""

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone
from .blocks import Stage, make_stage
from .expert_batching import batched_experts_forward

__all__ = ["MultiExpertBackbone"]


class MultiExpertBackbone(Backbone):
    """Images -> shared trunk -> E experts' own stages -> pooled features ``(E, N, D)``.

    The per-expert stages live in ``nn.ModuleList``s named ``<stage>s`` (``layer2s``,
    ``layer3s``, ...), one entry per expert, the layout of the reference RIDE code.
    Subclasses build the trunk, call ``_add_expert_stages`` and implement
    ``forward_trunk``; ``Backbone._finish_init`` then initialises everything.

    ``forward_experts`` runs any contiguous range of experts on a trunk output, which is
    what early-exit inference needs. With ``batched`` a range of several experts runs as one
    grouped network (see ``expert_batching``); otherwise, or for a single expert, the
    experts run one after the other. Both give the same numbers.

    Args:
        num_experts: E (>= 1).
        in_channels: input image channels.
        normalize_features: L2-normalise each expert's pooled feature.
        freeze: freeze everything after initialisation.
        batched: run several experts as one grouped network.
    """

    def __init__(
        self,
        num_experts: int,
        in_channels: int,
        normalize_features: bool = False,
        freeze: bool = False,
        batched: bool = True,
    ):
        super().__init__(in_channels, normalize_features, freeze)
        if num_experts < 1:
            raise ValueError(f"MODEL.RIDE.NUM_EXPERTS must be >= 1, got {num_experts}")
        self.num_experts = num_experts
        self.batched = batched
        self.expert_stage_names: Sequence[str] = ()

    def _add_expert_stages(
        self,
        names: Sequence[str],
        block: type,
        in_channels: int,
        widths: Sequence[int],
        num_blocks: Sequence[int],
        strides: Sequence[int],
        **block_kwargs,
    ) -> None:
        """Give every expert its own ``make_stage`` stages; sets ``out_features``."""
        if not len(names) == len(widths) == len(num_blocks) == len(strides):
            raise ValueError(
                f"{type(self).__name__} has {len(names)} expert stages; got widths "
                f"{tuple(widths)} (MODEL.RIDE.EXPERT_WIDTHS)"
            )
        channels = in_channels
        for name, width, blocks, stride in zip(names, widths, num_blocks, strides):
            stages = nn.ModuleList(
                make_stage(block, channels, width, blocks, stride, **block_kwargs)
                for _ in range(self.num_experts)
            )
            self.add_module(f"{name}s", stages)
            channels = stages[0].out_channels
        self.expert_stage_names = tuple(f"{name}s" for name in names)
        self.out_features = channels

    def expert_stages(self, expert: int) -> List[Stage]:
        """The stages of expert ``expert`` (0-based), in order."""
        return [getattr(self, name)[expert] for name in self.expert_stage_names]

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The shared part: images -> feature map fed to every expert."""
        raise NotImplementedError

    def forward_experts(
        self, shared: torch.Tensor, start: int = 0, stop: Optional[int] = None
    ) -> torch.Tensor:
        """Pooled features ``(stop - start, N, D)`` of experts ``start..stop-1``.

        Args:
            shared: the trunk output ``(N, C, H, W)`` (any subset of the batch).
            start: first expert (0-based).
            stop: one past the last expert; None = all.
        """
        stop = self.num_experts if stop is None else stop
        if not 0 <= start < stop <= self.num_experts:
            raise ValueError(f"Expert range [{start}, {stop}) is outside [0, {self.num_experts})")
        experts = [self.expert_stages(e) for e in range(start, stop)]
        if self.batched and len(experts) > 1:
            maps = batched_experts_forward(experts, shared)
            pooled = F.adaptive_avg_pool2d(maps, 1).flatten(1)
            pooled = pooled.view(shared.shape[0], len(experts), -1).transpose(0, 1)
        else:
            pooled = torch.stack(
                [
                    F.adaptive_avg_pool2d(self._run(stages, shared), 1).flatten(1)
                    for stages in experts
                ]
            )
        if self.normalize_features:
            pooled = F.normalize(pooled, dim=2)
        return pooled

    @staticmethod
    def _run(stages: Sequence[Stage], x: torch.Tensor) -> torch.Tensor:
        for stage in stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert's pooled feature, ``(E, N, out_features)``."""
        self._check_input(x)
        return self.forward_experts(self.forward_trunk(x))
