"""The expert router of RIDE ("expert assignment", docs/METHODS.md section 4).

There are E-1 routers; router k (0-based) sees what experts 0..k have computed and decides
whether expert k+1 runs. Its input is expert k's pooled feature, L2-normalised, through a
per-router ``Linear(D -> hidden) + ReLU``, concatenated with the top-K (sorted descending)
values of the running mean logits of experts 0..k; a ``Linear(hidden + K -> 1)`` shared by
all routers gives the logit of "the next expert helps".
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..config import configurable

__all__ = [
    "ExpertRouter",
    "cumulative_mean_logits",
    "experts_used",
    "router_labels",
    "threshold_logit",
]


def cumulative_mean_logits(expert_logits: torch.Tensor) -> torch.Tensor:
    """``(E, N, C)`` -> ``(E, N, C)`` whose entry k is the mean logits of experts 0..k."""
    steps = torch.arange(1, expert_logits.shape[0] + 1, device=expert_logits.device)
    return expert_logits.float().cumsum(dim=0) / steps.view(-1, 1, 1)


def router_labels(expert_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Targets of the routers: ``y_k = 1`` iff ensemble 0..k is wrong and a larger one is right.

    Args:
        expert_logits: ``(E, N, C)`` logits of all experts.
        targets: ``(N,)`` class indices.

    Returns:
        Float ``(E-1, N)``: row k is the label of router k (whether expert k+1 should run).
    """
    correct = cumulative_mean_logits(expert_logits).argmax(dim=2) == targets.view(1, -1)
    # right_later[j] = some ensemble 0..j' with j' >= j is right (a suffix "any").
    right_later = correct.flip(0).cummax(dim=0).values.flip(0)
    return (~correct[:-1] & right_later[1:]).float()


def threshold_logit(threshold: float) -> float:
    """The router logit equivalent of a probability threshold: ``p > t  <=>  logit > this``.

    Comparing logits keeps the extremes exact: threshold 0 (-inf) lets every sample continue
    even where ``sigmoid`` would round to 0, threshold >= 1 (+inf) stops every sample.
    """
    if threshold <= 0.0:
        return float("-inf")
    if threshold >= 1.0:
        return float("inf")
    return float(torch.logit(torch.tensor(threshold, dtype=torch.float64)))


class ExpertRouter(nn.Module):
    """E-1 routers deciding, sample by sample, whether the next expert runs.

    Args:
        num_experts: E (>= 2).
        in_features: D, the experts' pooled feature dimension.
        num_classes: C; the number of top logits used is ``min(top_k, C)``.
        hidden_dim: width of each router's hidden layer (16).
        top_k: K (30 CIFAR, 50 ImageNet/iNat).
        pos_weight: ``pos_weight`` of the BCE loss (100).
    """

    @configurable
    def __init__(
        self,
        *,
        num_experts: int,
        in_features: int,
        num_classes: int,
        hidden_dim: int = 16,
        top_k: int = 30,
        pos_weight: float = 100.0,
    ):
        super().__init__()
        if num_experts < 2:
            raise ValueError(f"A router needs at least 2 experts, got {num_experts}")
        if min(in_features, num_classes, hidden_dim, top_k) < 1 or pos_weight <= 0:
            raise ValueError(
                "ExpertRouter needs in_features, num_classes, hidden_dim, top_k >= 1 and "
                f"pos_weight > 0; got {in_features}, {num_classes}, {hidden_dim}, {top_k}, "
                f"{pos_weight}"
            )
        self.num_experts = num_experts
        self.top_k = min(top_k, num_classes)
        self.pos_weight = float(pos_weight)
        self.hidden = nn.ModuleList(
            nn.Linear(in_features, hidden_dim) for _ in range(num_experts - 1)
        )
        self.out = nn.Linear(hidden_dim + self.top_k, 1)

    @classmethod
    def from_config(cls, cfg, num_experts: int, in_features: int, num_classes: int):
        r = cfg.MODEL.ROUTER
        return {
            "num_experts": num_experts,
            "in_features": in_features,
            "num_classes": num_classes,
            "hidden_dim": r.HIDDEN_DIM,
            "top_k": r.TOP_K,
            "pos_weight": r.POS_WEIGHT,
        }

    def logit(self, k: int, feature: torch.Tensor, mean_logits: torch.Tensor) -> torch.Tensor:
        """Logit ``(N,)`` of router k: should expert k+1 run for these samples?

        Args:
            k: router index in ``[0, E-1)``.
            feature: ``(N, D)`` pooled feature of expert k.
            mean_logits: ``(N, C)`` mean logits of experts 0..k.
        """
        hidden = F.relu(self.hidden[k](F.normalize(feature, dim=1)))
        top = mean_logits.topk(self.top_k, dim=1, sorted=True).values
        return self.out(torch.cat([hidden, top.to(hidden.dtype)], dim=1)).squeeze(1)

    def forward(self, features: torch.Tensor, expert_logits: torch.Tensor) -> torch.Tensor:
        """All routers' logits ``(E-1, N)`` when every expert has been computed.

        Args:
            features: ``(E, N, D)`` (or ``(E-1, N, D)``) pooled features of the experts.
            expert_logits: ``(E, N, C)`` logits of the experts.
        """
        means = cumulative_mean_logits(expert_logits)
        return torch.stack(
            [self.logit(k, features[k], means[k]) for k in range(self.num_experts - 1)]
        )

    def loss(self, router_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over routers (and samples) of BCE-with-logits with ``pos_weight``."""
        logits = router_logits.float()
        return F.binary_cross_entropy_with_logits(
            logits, labels.to(logits), pos_weight=logits.new_tensor(self.pos_weight)
        )


def experts_used(router_logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Experts each sample runs under early exit, from all routers' logits.

    Sample n runs expert k+1 only if it ran expert k and router k's probability exceeds
    ``threshold``; evaluating every router on every sample (BN in eval mode makes samples
    independent) therefore predicts the early-exit path for any threshold.

    Args:
        router_logits: ``(E-1, N)``.
        threshold: probability threshold.

    Returns:
        Int64 ``(N,)`` in ``[1, E]``.
    """
    go = router_logits.float() > threshold_logit(threshold)
    # The run of consecutive "go"s from router 0 on: cumprod stops at the first "stop".
    return 1 + go.long().cumprod(dim=0).sum(dim=0)
