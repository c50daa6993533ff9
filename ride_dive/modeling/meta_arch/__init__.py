"""Meta-architectures: every module here registers its classes in ``META_ARCH_REGISTRY``."""

from .classifier import Classifier, resolve_num_classes
from .ride import RIDE

__all__ = ["Classifier", "RIDE", "resolve_num_classes"]
