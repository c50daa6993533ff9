"""Decoupled second stages on a trained model (Kang et al. 2020; METHODS.md 5).

cRT, LWS, tau-norm and NCM are configs, not trainers: a frozen backbone
(``MODEL.BACKBONE.FREEZE``), a head (``LinearHead`` re-initialised with
``MODEL.HEAD.REINIT`` = cRT; ``LWSHead`` = LWS; ``LinearHead`` with ``MODEL.HEAD.TAU_NORM``
= tau-norm; ``NCMHead`` = NCM) and class-aware sampling. This module holds the few steps
the trainer takes for them: re-initialising the heads after loading stage 1, and fitting
NCM's class means on the training split before evaluation.
"""
import logging
from typing import List

from torch import nn

from ..checkpoint import unwrap_model
from ..config import CfgNode, ConfigError
from ..data import build_test_loader, unaugmented_view
from ..evaluation import collect_features
from ..utils import comm

__all__ = ["check_trainable_heads", "fit_evaluation_heads", "model_heads", "reinit_heads"]

logger = logging.getLogger("ride_dive")


def model_heads(model: nn.Module) -> List[nn.Module]:
    """The classifier head(s): ``[model.head]`` or RIDE's per-expert ``model.heads``."""
    model = unwrap_model(model)
    if hasattr(model, "heads"):
        return list(model.heads)
    return [model.head] if hasattr(model, "head") else []


def reinit_heads(model: nn.Module) -> None:
    """Re-initialise every head (cRT: after loading the stage-1 weights)."""
    heads = model_heads(model)
    for head in heads:
        head.reset_parameters()
    logger.info(f"MODEL.HEAD.REINIT: re-initialised {len(heads)} head(s) "
                f"({type(heads[0]).__name__})")


def check_trainable_heads(model: nn.Module) -> None:
    """Refuse to train a model whose head is evaluation-only (NCM)."""
    for head in model_heads(model):
        if getattr(head, "evaluation_only", False):
            raise ConfigError(
                f"MODEL.HEAD.NAME='{type(head).__name__}' has nothing to train: evaluate it "
                "with --eval-only MODEL.WEIGHTS <stage-1 model_final.pth>"
            )


def fit_evaluation_heads(cfg: CfgNode, model: nn.Module, train_dataset, device) -> None:
    """Fit heads that are computed from training features (NCM) before evaluation.

    The features are the model's on the training split with the test-time transform,
    gathered from every rank, so every rank fits the same means.
    """
    heads = [h for h in model_heads(model) if hasattr(h, "fit")]
    if not heads:
        return
    loader = build_test_loader(cfg, unaugmented_view(cfg, train_dataset),
                               num_replicas=comm.get_world_size(), rank=comm.get_rank(),
                               device=device)
    # float32 (no autocast): class means of bf16 features would lose the small differences
    # NCM's distances depend on.
    features, labels = collect_features(model, loader, device, autocast_dtype=None)
    for head in heads:
        head.fit(features, labels)
    logger.info(f"Fitted {type(heads[0]).__name__} on {len(labels)} training images")
