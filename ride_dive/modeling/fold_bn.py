"""Fold eval-mode BatchNorm layers into the convolutions before them, for frozen models.

In eval mode a BatchNorm is a per-channel affine map, ``y = (x - mean) / sqrt(var + eps) *
gamma + beta``; after a convolution it can be folded into the convolution's weights and a
bias, and the BatchNorm replaced by ``nn.Identity``: the same function with one elementwise
pass over every activation less. That is what a frozen DiVE teacher runs on each training
batch.

Which convolution feeds which BatchNorm is declared by the modules themselves (a
``conv_bn_pairs`` class attribute of dotted child names, e.g. ``(("conv1", "bn1"),
("shortcut.0", "shortcut.1"))``), never guessed from names, so a module that declares
nothing is left as it is.
"""

import torch
from torch import nn

__all__ = ["fold_batch_norms"]


def _child(module: nn.Module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _set_child(module: nn.Module, dotted: str, value: nn.Module) -> None:
    *path, leaf = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    setattr(module, leaf, value)


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.affine:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    if bn.affine:
        shift = shift + bn.bias
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every declared (convolution, BatchNorm) pair of ``model`` in place.

    Only plain ``nn.BatchNorm2d`` layers with running statistics are folded (not
    SyncBatchNorm or GroupNorm); the model must stay in eval mode afterwards (a folded model
    cannot be trained as before). Returns the number of folded pairs.
    """
    if model.training:
        raise RuntimeError(
            "fold_batch_norms needs a model in eval mode (it bakes in BN statistics)"
        )
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in getattr(type(module), "conv_bn_pairs", ()):
            conv, bn = _child(module, conv_name), _child(module, bn_name)
            if type(conv) is not nn.Conv2d or type(bn) is not nn.BatchNorm2d:
                continue
            if bn.running_mean is None or conv.out_channels != bn.num_features:
                continue
            _fold(conv, bn)
            _set_child(module, bn_name, nn.Identity().train(False))
            folded += 1
    return folded
