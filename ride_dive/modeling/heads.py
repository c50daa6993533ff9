"""Classifier heads: linear (with test-time tau-normalisation), cosine, LWS and NCM.

Every head maps features ``(N, D)`` to logits ``(N, C)`` and has ``reset_parameters()``.
With ``MODEL.HEAD.REINIT`` (cRT) a trainable head re-initialises itself in
``before_training`` (see ``modeling.training_setup``): when a run starts training from
``MODEL.WEIGHTS``, not on ``--resume`` and not with ``--eval-only``.

Capabilities the rest of the framework asks a head for (never its class name):
``estimates_balanced_posterior`` (its logits remove the training prior: NCM, tau-norm; the
label-shift evaluation reads it), ``supports_tau_norm`` (its ``tau`` can be swept:
``TEST.TAU_NORM_SWEEP``), ``fit(features, labels)`` (computed from training features before
evaluation: NCM) and ``evaluation_only`` (nothing to train).

A head may declare how it reads a stage-1 checkpoint (the meta-architecture prefixes them
with its own name): ``newly_initialized_keys``, state keys it initialises itself (LWS's
scales), and ``unused_checkpoint_keys``, keys of the stage-1 head it does not use (NCM).
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, configurable
from .registry import HEAD_REGISTRY

__all__ = ["CosineHead", "LWSHead", "LinearHead", "NCMHead", "tau_normalized_weight"]


def tau_normalized_weight(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """Return ``W_c / ||W_c||^tau`` for every class row ``W_c`` (Kang et al. 2020).

    Args:
        weight: classifier weight ``(C, D)``.
        tau: the normalisation power, >= 0; 0 returns ``weight`` unchanged, 1 unit rows.
    """
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if weight.dim() != 2:
        raise ValueError(f"Expected a (C, D) weight, got shape {tuple(weight.shape)}")
    # The clamp keeps an all-zero row finite instead of 0 / 0.
    norms = weight.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return weight / norms.pow(tau)


def _check_sizes(in_features: int, num_classes: int) -> None:
    if in_features < 1 or num_classes < 1:
        raise ValueError(
            f"A head needs in_features >= 1 and num_classes >= 1, got {in_features} and "
            f"{num_classes}"
        )


class _ReinitBeforeTraining:
    """``MODEL.HEAD.REINIT`` (cRT): re-initialise the head when a run starts training.

    ``reinit`` is set by ``from_config``; on ``--resume`` the checkpoint holds the trained
    head, so nothing is reset then.
    """

    reinit: bool = False

    def before_training(self, ctx) -> Optional[str]:
        if not self.reinit or ctx.resumed:
            return None
        self.reset_parameters()
        return f"MODEL.HEAD.REINIT: re-initialised the {type(self).__name__}"


def _reject_tau(cfg, head: str) -> None:
    # A silently ignored tau sweep would report the plain head's accuracy under tau's name.
    if cfg.MODEL.HEAD.TAU_NORM >= 0:
        raise ConfigError(
            f"MODEL.HEAD.TAU_NORM={cfg.MODEL.HEAD.TAU_NORM} is only supported by LinearHead, "
            f"not {head}; set MODEL.HEAD.TAU_NORM to -1"
        )


@HEAD_REGISTRY.register()
class LinearHead(_ReinitBeforeTraining, nn.Module):
    """``logits = W x + b``; in eval mode with ``tau >= 0``: ``tau_normalized_weight(W) x``.

    Args:
        in_features: feature dimension D.
        num_classes: number of classes C.
        bias: learn a bias (``MODEL.HEAD.BIAS``).
        tau: tau-normalisation power used in eval mode (``MODEL.HEAD.TAU_NORM``); < 0 = off.
            The attribute ``tau`` can be changed after construction (tau sweeps).
        reinit: re-initialise before training (``MODEL.HEAD.REINIT``, cRT).
    """

    supports_tau_norm = True

    @configurable
    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        bias: bool = True,
        tau: float = -1.0,
        reinit: bool = False,
    ):
        super().__init__()
        _check_sizes(in_features, num_classes)
        self.fc = nn.Linear(in_features, num_classes, bias=bias)
        self.tau = tau
        self.reinit = reinit

    @classmethod
    def from_config(cls, cfg, in_features, num_classes):
        return {
            "in_features": in_features,
            "num_classes": num_classes,
            "bias": cfg.MODEL.HEAD.BIAS,
            "tau": cfg.MODEL.HEAD.TAU_NORM,
            "reinit": cfg.MODEL.HEAD.REINIT,
        }

    @property
    def estimates_balanced_posterior(self) -> bool:
        """tau-normalised rows are built to remove the prior (an approximation)."""
        return self.tau >= 0

    def reset_parameters(self) -> None:
        """Re-initialise ``W`` and ``b`` (PyTorch's ``nn.Linear`` initialisation)."""
        self.fc.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.tau >= 0:
            return F.linear(x, tau_normalized_weight(self.fc.weight, self.tau))
        return self.fc(x)


@HEAD_REGISTRY.register()
class CosineHead(_ReinitBeforeTraining, nn.Module):
    """``logit_c = s * cos(x, w_c)`` without bias (RIDE/LDAM "normed linear").

    Args:
        in_features: feature dimension D.
        num_classes: number of classes C.
        scale: the scale s (``MODEL.HEAD.COSINE_SCALE``), > 0.
        reinit: re-initialise before training (``MODEL.HEAD.REINIT``, cRT).
    """

    @configurable
    def __init__(
        self, *, in_features: int, num_classes: int, scale: float = 30.0, reinit: bool = False
    ):
        super().__init__()
        _check_sizes(in_features, num_classes)
        if scale <= 0:
            raise ValueError(f"MODEL.HEAD.COSINE_SCALE must be > 0, got {scale}")
        self.scale = scale
        self.reinit = reinit
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        self.reset_parameters()

    @classmethod
    def from_config(cls, cfg, in_features, num_classes):
        _reject_tau(cfg, "CosineHead")
        return {
            "in_features": in_features,
            "num_classes": num_classes,
            "scale": cfg.MODEL.HEAD.COSINE_SCALE,
            "reinit": cfg.MODEL.HEAD.REINIT,
        }

    def reset_parameters(self) -> None:
        """Uniform directions; only the direction of each row matters."""
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


@HEAD_REGISTRY.register()
class LWSHead(_ReinitBeforeTraining, nn.Module):
    """Learnable weight scaling: ``logit_c = f_c * (W_c x + b_c)`` with ``W``, ``b`` frozen.

    ``fc`` has the same name and shape as ``LinearHead.fc``, so a stage-1 checkpoint's
    classifier loads into it; only ``scales`` (init 1) is trained.

    Args:
        in_features: feature dimension D.
        num_classes: number of classes C.
        bias: whether the wrapped linear layer has a bias (``MODEL.HEAD.BIAS``).
        reinit: reset the scales to 1 before training (``MODEL.HEAD.REINIT``).
    """

    @configurable
    def __init__(
        self, *, in_features: int, num_classes: int, bias: bool = True, reinit: bool = False
    ):
        super().__init__()
        _check_sizes(in_features, num_classes)
        self.reinit = reinit
        self.fc = nn.Linear(in_features, num_classes, bias=bias)
        self.fc.requires_grad_(False)
        self.scales = nn.Parameter(torch.ones(num_classes))
        # A stage-1 LinearHead checkpoint has fc.weight/fc.bias but no scales.
        self.newly_initialized_keys = ("scales",)

    @classmethod
    def from_config(cls, cfg, in_features, num_classes):
        _reject_tau(cfg, "LWSHead")
        return {
            "in_features": in_features,
            "num_classes": num_classes,
            "bias": cfg.MODEL.HEAD.BIAS,
            "reinit": cfg.MODEL.HEAD.REINIT,
        }

    def reset_parameters(self) -> None:
        """Reset the scales to 1; the frozen ``W``, ``b`` come from stage 1 and are kept."""
        with torch.no_grad():
            self.scales.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scales


@HEAD_REGISTRY.register()
class NCMHead(nn.Module):
    """Nearest class mean: ``logit_c = -||g(x) - mu_c||^2`` (Kang et al. 2020).

    ``g(x) = normalize(x - center)``: features are centred on the training mean and
    L2-normalised; ``mu_c`` is the mean of ``g`` over class c's training images. The head
    has no trainable parameters: ``fit(features, labels)`` computes ``center`` and ``means``
    (the evaluation fits it on the training split first), so it is an
    evaluation-only head. It reads any stage-1 checkpoint, ignoring the stage-1 classifier.

    Args:
        in_features: feature dimension D.
        num_classes: number of classes C.
    """

    evaluation_only = True
    estimates_balanced_posterior = True

    @configurable
    def __init__(self, *, in_features: int, num_classes: int):
        super().__init__()
        _check_sizes(in_features, num_classes)
        self.register_buffer("center", torch.zeros(in_features))
        self.register_buffer("means", torch.zeros(num_classes, in_features))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.newly_initialized_keys = ("center", "means", "fitted")
        self.unused_checkpoint_keys = ("fc.", "weight", "scales")

    @classmethod
    def from_config(cls, cfg, in_features, num_classes):
        _reject_tau(cfg, "NCMHead")
        return {"in_features": in_features, "num_classes": num_classes}

    def before_training(self, ctx) -> None:
        """Refuse to train: NCM has no parameters; it is fitted when evaluated."""
        raise ConfigError(
            "MODEL.HEAD.NAME='NCMHead' has nothing to train: evaluate it with --eval-only "
            "MODEL.WEIGHTS <stage-1 model_final.pth> (its class means are fitted on the "
            "training split before the evaluation)"
        )

    def reset_parameters(self) -> None:
        """Forget the fitted means."""
        self.center.zero_()
        self.means.zero_()
        self.fitted.fill_(False)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.float() - self.center, dim=1)

    @torch.no_grad()
    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Class means of the centred, L2-normalised training ``features`` ``(N, D)``.

        Raises:
            ValueError: a class has no training feature (its mean would be undefined).
        """
        features = features.float().to(self.means.device)
        labels = labels.long().to(self.means.device)
        num_classes = self.means.shape[0]
        counts = torch.bincount(labels, minlength=num_classes)
        if bool((counts == 0).any()):
            empty = torch.nonzero(counts == 0).flatten().tolist()
            raise ValueError(f"NCM needs training images of every class; none for {empty}")
        self.center.copy_(features.mean(dim=0))
        sums = torch.zeros_like(self.means).index_add_(0, labels, self._embed(features))
        self.means.copy_(sums / counts.unsqueeze(1).to(sums.dtype))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("NCMHead is evaluation-only: run it with --eval-only")
        if not bool(self.fitted):
            raise RuntimeError("NCMHead.fit(features, labels) must run before evaluation")
        return -torch.cdist(self._embed(x), self.means).square()
