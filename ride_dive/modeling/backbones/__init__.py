"""Backbones: every module here registers its classes in ``BACKBONE_REGISTRY`` on import."""

from .base import Backbone, scaled_width
from .blocks import BasicBlock, Bottleneck, PadShortcut, Stage, conv1x1, conv3x3, make_stage
from .expert_batching import batched_experts_forward
from .library_trunk import InputSpec
from .multi_expert import MultiExpertBackbone
from .pretrained_ride import RIDETimmBackbone, RIDETorchvisionBackbone
from .resnet import BottleneckResNet, ResNet50, ResNet152, ResNeXt50
from .resnet_cifar import CifarResNet, ResNet32
from .ride import RIDEResNet32, RIDEResNet50, RIDEResNeXt50
from .timm_backbone import TimmBackbone
from .torchvision_backbone import TorchvisionBackbone

__all__ = [
    "Backbone",
    "BasicBlock",
    "Bottleneck",
    "BottleneckResNet",
    "CifarResNet",
    "InputSpec",
    "MultiExpertBackbone",
    "PadShortcut",
    "RIDEResNet32",
    "RIDEResNet50",
    "RIDEResNeXt50",
    "RIDETimmBackbone",
    "RIDETorchvisionBackbone",
    "ResNet32",
    "ResNet50",
    "ResNet152",
    "ResNeXt50",
    "Stage",
    "TimmBackbone",
    "TorchvisionBackbone",
    "batched_experts_forward",
    "conv1x1",
    "conv3x3",
    "make_stage",
    "scaled_width",
]
