"""Meta-architectures: every module here registers its classes in ``META_ARCH_REGISTRY``."""
from .classifier import Classifier, resolve_num_classes

__all__ = ["Classifier", "resolve_num_classes"]
