"""A new loss in one file: the worked example of docs/ARCHITECTURE.md.

Label smoothing (Szegedy et al. 2016): cross-entropy against the target
``(1 - eps) * one_hot(y) + eps / C``, i.e. ``(1 - eps) * CE(z, y) + eps * mean_c(-log p_c)``.

Registering the class is all it takes; the loss then works wherever a loss is named:
``MODEL.LOSS.NAME``, ``MODEL.LOSS.RIDE.BASE_LOSS`` (every RIDE expert) or
``DISTILL.BASE_LOSS`` (DiVE's hard-label part). ``LongTailLoss`` brings the input checks,
float32 computation and the DRW class weights of ``MODEL.LOSS.DRW_EPOCH``.

Load it with ``tools/train_net.py --plugin docs/examples/label_smoothing/label_smoothing_loss.py``.
"""

import torch
import torch.nn.functional as F

from ride_dive.config import configurable
from ride_dive.modeling import LOSS_REGISTRY
from ride_dive.modeling.losses import LongTailLoss


@LOSS_REGISTRY.register()
class LabelSmoothingLoss(LongTailLoss):
    """``(1 - eps) * CE(z, y) + eps * mean_c(-log softmax(z)_c)``, DRW-weighted per sample.

    Args:
        smoothing: eps in [0, 1); 0 is plain cross-entropy.
        class_counts, drw_epoch, drw_beta: as every ``LongTailLoss``.
    """

    @configurable
    def __init__(
        self,
        *,
        class_counts=None,
        drw_epoch: int = -1,
        drw_beta: float = 0.9999,
        smoothing: float = 0.1,
    ):
        super().__init__(class_counts, drw_epoch, drw_beta)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)

    @classmethod
    def from_config(cls, cfg, class_counts=None):
        # A hyper-parameter of its own would be a new key in ride_dive/config/defaults.py
        # read here; the example keeps eps at its default.
        return cls.loss_kwargs(cfg, class_counts)

    def compute(self, logits: torch.Tensor, targets: torch.Tensor, weight) -> torch.Tensor:
        log_probs = F.log_softmax(logits, dim=1)
        nll = -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
        per_sample = (1.0 - self.smoothing) * nll - self.smoothing * log_probs.mean(dim=1)
        if weight is None:
            return per_sample.mean()
        sample_weight = weight[targets]
        return (sample_weight * per_sample).sum() / sample_weight.sum()
