"""The one table of every registry in ride_dive and the names registered in it.

``tests/test_configs.py`` checks that it equals the live registries both ways (a new
registration, or a new registry, must be added here); ``tests/modeling/test_modeling_build.py``
builds every backbone, head and loss it lists.
"""

import importlib
import pkgutil
from typing import Dict

from fvcore.common.registry import Registry

# Keyed by the registry's own name (``Registry("HEAD")``).
REGISTERED_NAMES = {
    "META_ARCH": {"Classifier", "RIDE"},
    "BACKBONE": {
        "ResNet32",
        "ResNet50",
        "ResNeXt50",
        "ResNet152",
        "RIDEResNet32",
        "RIDEResNet50",
        "RIDEResNeXt50",
        "TimmBackbone",
        "TorchvisionBackbone",
        "RIDETimmBackbone",
        "RIDETorchvisionBackbone",
    },
    "HEAD": {"LinearHead", "CosineHead", "LWSHead", "NCMHead"},
    "LOSS": {
        "CrossEntropyLoss",
        "BalancedSoftmaxLoss",
        "LogitAdjustedLoss",
        "LDAMLoss",
        "FocalLoss",
        "RIDELoss",
        "DiVELoss",
    },
    "DATASET": {
        "FashionMNISTLT",
        "CIFAR10LT",
        "CIFAR100LT",
        "ImageNetLT",
        "PlacesLT",
        "INaturalist2018",
        "SyntheticLT",
    },
    "SAMPLER": {
        "InstanceBalancedSampler",
        "ClassAwareSampler",
        "SquareRootSampler",
        "ProgressivelyBalancedSampler",
    },
    "EVALUATOR": {
        "FitEvaluationHeads",
        "RouterThresholdSelection",
        "TestClassification",
        "ExpertCompetenceCheck",
        "ComponentResults",
        "ValidationClassification",
        "InferenceMacs",
        "RouterSweep",
        "TauNormSweep",
        "PosthocLogitAdjustment",
    },
}


def public_registries() -> Dict[str, Registry]:
    """The registries as importing ``ride_dive.modeling``, ``ride_dive.data`` and
    ``ride_dive.evaluation`` (which imports ``default_evaluators``) fill them."""
    from ride_dive.data import DATASET_REGISTRY, SAMPLER_REGISTRY
    from ride_dive.evaluation import EVALUATOR_REGISTRY
    from ride_dive.modeling import (
        BACKBONE_REGISTRY,
        HEAD_REGISTRY,
        LOSS_REGISTRY,
        META_ARCH_REGISTRY,
    )

    registries = [
        META_ARCH_REGISTRY,
        BACKBONE_REGISTRY,
        HEAD_REGISTRY,
        LOSS_REGISTRY,
        DATASET_REGISTRY,
        SAMPLER_REGISTRY,
        EVALUATOR_REGISTRY,
    ]
    return {r._name: r for r in registries}


def every_registry() -> Dict[str, Registry]:
    """Every ``Registry`` object at module level in any ride_dive module, after importing all
    of them (so a registration in a module the packages do not import shows up too)."""
    import ride_dive

    found: Dict[str, Registry] = {}
    for info in pkgutil.walk_packages(ride_dive.__path__, "ride_dive."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Registry):
                assert found.setdefault(value._name, value) is value, value._name
    return found


def names(registry: Registry) -> set:
    return {name for name, _ in registry}
