"""The ``Backbone`` base class: pooling, optional feature normalisation, freezing, init."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Backbone", "scaled_width"]


def scaled_width(channels: int, width_mult: float) -> int:
    """Return ``round(channels * width_mult)``, at least 1.

    Args:
        channels: the published width.
        width_mult: ``MODEL.BACKBONE.WIDTH_MULT`` (> 0).
    """
    if width_mult <= 0:
        raise ValueError(f"MODEL.BACKBONE.WIDTH_MULT must be > 0, got {width_mult}")
    return max(1, int(round(channels * width_mult)))


class Backbone(nn.Module):
    """Maps images ``(N, in_channels, H, W)`` to pooled features ``(N, out_features)``.

    Subclasses build their layers, set ``out_features``, implement ``forward_features``
    (images -> last feature map) and finish their ``__init__`` with ``self._finish_init()``,
    which initialises the weights and applies ``freeze``.

    Args:
        in_channels: input image channels.
        normalize_features: L2-normalise the pooled feature (used with cosine heads).
        freeze: freeze the backbone after initialisation (see ``freeze()``).
    """

    # Kaiming fan mode for convolutions; the CIFAR ResNets of LDAM/RIDE use fan_in,
    # torchvision's ImageNet ResNets fan_out.
    kaiming_mode = "fan_out"

    def __init__(self, in_channels: int, normalize_features: bool = False, freeze: bool = False):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"MODEL.BACKBONE.IN_CHANNELS must be >= 1, got {in_channels}")
        self.in_channels = in_channels
        self.normalize_features = normalize_features
        self.out_features = 0
        self.frozen = False
        self._freeze_requested = freeze

    def _finish_init(self) -> None:
        """Initialise the weights, then freeze if requested; call at the end of ``__init__``."""
        if self.out_features <= 0:
            raise RuntimeError(f"{type(self).__name__} did not set out_features")
        self.init_weights()
        if self._freeze_requested:
            self.freeze()

    def init_weights(self) -> None:
        """Kaiming-normal convolutions (ReLU gain); BatchNorm weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode=self.kaiming_mode, nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def freeze(self) -> "Backbone":
        """Stop gradients to every parameter and keep BatchNorm statistics fixed.

        The backbone then stays in eval mode even when a parent calls ``train()``, so
        running statistics never drift during a decoupled second stage.
        """
        for p in self.parameters():
            p.requires_grad_(False)
        self.frozen = True
        return self.train(False)

    def train(self, mode: bool = True) -> "Backbone":
        """Set train/eval mode; a frozen backbone always stays in eval mode."""
        return super().train(mode and not self.frozen)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last feature map ``(N, out_features, h, w)``."""
        raise NotImplementedError

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects images (N, {self.in_channels}, H, W) "
                f"(MODEL.BACKBONE.IN_CHANNELS={self.in_channels}), got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled (and optionally L2-normalised) features ``(N, out_features)``."""
        self._check_input(x)
        feats = F.adaptive_avg_pool2d(self.forward_features(x), 1).flatten(1)
        if self.normalize_features:
            feats = F.normalize(feats, dim=1)
        return feats
