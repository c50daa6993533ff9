"""What the importer tests share: the shipped configs they convert into, the tiny widths of the
reference networks, and the converter tool as a module."""

import os
import shlex
import sys

import torch

from ride_dive.checkpoint import Checkpointer
from ride_dive.engine import setup_cfg
from ride_dive.modeling import build_model
from tests.conftest import ROOT

RIDE_CIFAR = os.path.join(ROOT, "configs/CIFAR100-LT/ride_4e_r32_if100.yaml")
RIDE_IMAGENET = os.path.join(ROOT, "configs/ImageNet-LT/ride_4e_x50.yaml")
CRT = os.path.join(ROOT, "configs/ImageNet-LT/crt_x50.yaml")
LWS = os.path.join(ROOT, "configs/ImageNet-LT/lws_x50.yaml")
# Tiny versions of the published architectures: RIDE ResNet-32 at a quarter width (stem 4,
# experts 6/12 channels), bottleneck networks at 1/8 width with 2 groups of 16.
CIFAR_OPTS = ["MODEL.BACKBONE.WIDTH_MULT", "0.25", "MODEL.DEVICE", "'cpu'"]
BOTTLENECK_OPTS = [
    "MODEL.BACKBONE.WIDTH_MULT",
    "0.125",
    "MODEL.RESNET.GROUPS",
    "2",
    "MODEL.RESNET.WIDTH_PER_GROUP",
    "16",
    "MODEL.DEVICE",
    "'cpu'",
]


def tiny_cfg(config_file, *opts):
    return setup_cfg(
        config_file, [*CIFAR_OPTS, *opts] if "CIFAR" in config_file else [*BOTTLENECK_OPTS, *opts]
    )


def eval_logits(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, torch.Tensor) else out["logits"]


def converted_model(cfg, path):
    """A fresh model from ``cfg`` loaded from ``path`` the way ``--eval-only`` loads it."""
    model = build_model(cfg, class_counts=[1] * 10)
    Checkpointer(model, save_dir=os.path.dirname(path)).load(path, checkpointables=[])
    return model


def converter_tool():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import convert_checkpoint as tool_module
    finally:
        sys.path.pop(0)
    return tool_module


def printed_command(stdout: str, prefix: str = "Evaluate: ") -> list:
    line = next(ln for ln in stdout.splitlines() if ln.startswith(prefix))
    return shlex.split(line[len(prefix) :])
