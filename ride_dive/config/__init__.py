"""Configuration: defaults, ``get_cfg``, ``@configurable`` and validation."""
from .config import CfgNode, ConfigError, assert_cfg, configurable, get_cfg

__all__ = ["CfgNode", "ConfigError", "assert_cfg", "configurable", "get_cfg"]
