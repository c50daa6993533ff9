"""Model registries. Each docstring states what a registered object is called with."""

from fvcore.common.registry import Registry

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """
Whole models. Called as ``obj(cfg, class_counts=list_of_training_counts)``; the result is an
``nn.Module`` whose ``forward(images, targets=None)`` returns a dict of named scalar losses in
train mode and, in eval mode, logits ``(N, C)`` or a dict with ``"logits"`` (multi-expert
models add ``"expert_logits"``, ``"experts_used"``, ``"num_experts"``; see the evaluator).
"""

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """
Feature extractors. Called as ``obj(cfg)``; the result maps images ``(N, C, H, W)`` to pooled
features ``(N, out_features)`` and exposes the int attribute ``out_features`` and the bool
attribute ``frozen`` (a frozen backbone stays in eval mode and runs without autograd).
Multi-expert backbones (``MultiExpertBackbone``, for the RIDE meta-architecture) return
``(num_experts, N, out_features)`` instead.
"""

HEAD_REGISTRY = Registry("HEAD")
HEAD_REGISTRY.__doc__ = """
Classifier heads. Called as ``obj(cfg, in_features=D, num_classes=C)``; maps ``(N, D)``
features to ``(N, C)`` logits and has ``reset_parameters()`` (cRT re-initialises the head).
"""

LOSS_REGISTRY = Registry("LOSS")
LOSS_REGISTRY.__doc__ = """
Classification losses. Called as ``obj(cfg, class_counts=list_of_training_counts)``; the result
is an ``nn.Module`` with ``forward(logits, targets) -> scalar`` and ``set_epoch(epoch)`` (epoch
dependent losses such as DRW switch behaviour there; others ignore it). Losses with the class
attribute ``takes_expert_logits = True`` (``RIDELoss``) instead take every expert's logits
``(E, N, C)`` and return a dict of named scalar terms.
"""
