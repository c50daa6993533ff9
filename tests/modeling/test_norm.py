"""MODEL.BACKBONE.NORM: GroupNorm and SyncBatchNorm conversions of a built model."""

import pytest
import torch
from torch import nn

from ride_dive.config import ConfigError
from ride_dive.engine import DefaultTrainer
from ride_dive.modeling import build_model
from ride_dive.modeling.backbones import RIDEResNet32
from ride_dive.modeling.norm import to_sync_batch_norm


@pytest.fixture
def model_cfg(model_cfg):
    model_cfg.MODEL.NUM_CLASSES = 10
    return model_cfg


def _norm_types(model):
    return {
        type(m)
        for m in model.modules()
        if isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm))
    }


def test_group_norm_replaces_every_batch_norm_and_keeps_names(model_cfg):
    bn_model = build_model(model_cfg)
    model_cfg.MODEL.BACKBONE.NORM = "GN"
    model_cfg.MODEL.BACKBONE.GN_GROUPS = 8
    gn_model = build_model(model_cfg)
    assert _norm_types(bn_model) == {nn.BatchNorm2d}
    assert _norm_types(gn_model) == {nn.GroupNorm}
    # Same parameter names; only BN's running statistics are gone.
    assert [n for n, _ in gn_model.named_parameters()] == [
        n for n, _ in bn_model.named_parameters()
    ]
    assert not [k for k in gn_model.state_dict() if "running" in k]
    # gcd(8, channels) groups: ResNet-32 at width 0.25 has 4, 8 and 16 channels.
    groups = {
        (m.num_groups, m.num_channels) for m in gn_model.modules() if isinstance(m, nn.GroupNorm)
    }
    assert groups == {(4, 4), (8, 8), (8, 16)}


def test_group_norm_output_does_not_depend_on_the_batch_split(model_cfg):
    model_cfg.MODEL.BACKBONE.NORM = "GN"
    model = build_model(model_cfg).train()
    x = torch.randn(8, 3, 32, 32)
    whole = model.extract_features(x)
    halves = torch.cat([model.extract_features(x[:4]), model.extract_features(x[4:])])
    torch.testing.assert_close(whole, halves, rtol=1e-5, atol=1e-5)


def test_group_norm_keeps_a_frozen_backbone_frozen(model_cfg):
    model_cfg.MODEL.BACKBONE.NORM = "GN"
    model_cfg.MODEL.BACKBONE.FREEZE = True
    model = build_model(model_cfg)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())


def test_sync_batch_norm_converts_and_runs_experts_one_by_one():
    backbone = RIDEResNet32(num_experts=2, width_mult=0.25)
    assert backbone.batched
    converted = to_sync_batch_norm(backbone)
    assert nn.BatchNorm2d not in _norm_types(converted)
    assert nn.SyncBatchNorm in _norm_types(converted)
    assert converted.batched is False
    # Without a process group SyncBatchNorm computes plain BatchNorm.
    reference = RIDEResNet32(num_experts=2, width_mult=0.25)
    reference.load_state_dict(converted.state_dict())
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(converted(x), reference(x))


def test_sync_bn_on_cpu_processes_is_a_config_error(tiny_cfg, monkeypatch):
    from ride_dive.engine import defaults

    cfg = tiny_cfg(**{"MODEL.BACKBONE.NORM": "SyncBN"})
    DefaultTrainer(cfg)  # one process: plain BatchNorm, nothing to synchronise
    monkeypatch.setattr(defaults.comm, "get_world_size", lambda: 2)
    with pytest.raises(ConfigError, match="SyncBN.*GPUs.*'GN'"):
        DefaultTrainer(cfg)


def test_unknown_norm_is_rejected(tiny_cfg):
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NORM must be"):
        tiny_cfg(**{"MODEL.BACKBONE.NORM": "LN"})
