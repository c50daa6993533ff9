"""Checkpoint files written as the original RIDE code writes them (a pickled
``parse_config.ConfigParser`` beside the state dict), for the importer tests and the
hostile-input fixtures."""

import collections
import pathlib
import sys
import types

import numpy as np
import torch

from tests.checkpoint.reference_nets import ride_state_dict

__all__ = ["save_ride"]


def _fake_config_module(payload=None):
    """A throwaway ``parse_config`` with RIDE's ConfigParser shape (or a malicious class)."""
    module = types.ModuleType("parse_config")

    class ConfigParser:
        def __reduce__(self):  # only used for the malicious variant
            return payload

    if payload is None:
        del ConfigParser.__reduce__
    ConfigParser.__module__, ConfigParser.__qualname__ = "parse_config", "ConfigParser"
    module.ConfigParser = ConfigParser
    return module, ConfigParser


def save_ride(path, net, args=None, payload=None):
    """Save ``net`` as RIDE's BaseTrainer does, with a pickled ConfigParser as ``config``."""
    assert "parse_config" not in sys.modules
    module, parser_cls = _fake_config_module(payload)
    sys.modules["parse_config"] = module
    try:
        config = parser_cls()
        if payload is None:
            config._config = collections.OrderedDict(
                name="Imbalance_CIFAR100_LT_RIDE",
                arch={"type": "ResNet32Model", "args": dict(args or {})},
            )
            config._save_dir = pathlib.PosixPath("saved/models/x")
            config.resume = None
        torch.save(
            {
                "arch": "ResNet32Model",
                "epoch": 5,
                "state_dict": ride_state_dict(net),
                "optimizer": {"state": {}, "param_groups": []},
                "monitor_best": np.float64(0.42),
                "config": config,
            },
            path,
        )
    finally:
        del sys.modules["parse_config"]  # the loader must not find the class
