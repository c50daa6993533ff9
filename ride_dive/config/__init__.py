"""Configuration: defaults, ``get_cfg``, ``@configurable`` and validation."""

from .checks import assert_cfg
from .config import CfgNode, ConfigError, configurable, get_cfg

__all__ = ["CfgNode", "ConfigError", "assert_cfg", "configurable", "get_cfg"]
