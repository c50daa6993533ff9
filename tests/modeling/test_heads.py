"""Heads: linear with tau-normalisation, cosine s*cos, LWS scales; construction errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ride_dive.config import ConfigError
from ride_dive.modeling import CosineHead, LinearHead, LWSHead, build_head, tau_normalized_weight


def test_tau_normalized_weight_formula():
    weight = torch.randn(5, 7, dtype=torch.float64)
    w = weight.numpy()
    for tau in (0.0, 0.3, 1.0, 2.0):
        expected = w / np.linalg.norm(w, axis=1, keepdims=True) ** tau
        np.testing.assert_allclose(tau_normalized_weight(weight, tau).numpy(), expected)
    assert torch.equal(tau_normalized_weight(weight, 0.0), weight)
    norms = tau_normalized_weight(weight, 1.0).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match=">= 0"):
        tau_normalized_weight(weight, -0.5)


def test_linear_head_tau_norm_applies_in_eval_only_and_drops_the_bias():
    head = LinearHead(in_features=6, num_classes=4, tau=0.0)
    torch.nn.init.normal_(head.fc.bias)  # a non-zero bias, so dropping it is visible
    x = torch.randn(3, 6)
    w, b = head.fc.weight, head.fc.bias
    torch.testing.assert_close(head.train()(x), x @ w.T + b)
    torch.testing.assert_close(head.eval()(x), x @ w.T)  # tau = 0: raw W, no bias
    head.tau = 1.5
    expected = x @ (w / w.norm(dim=1, keepdim=True) ** 1.5).T
    torch.testing.assert_close(head(x), expected)
    head.tau = -1.0
    torch.testing.assert_close(head(x), x @ w.T + b)


def test_linear_head_bias_option():
    assert LinearHead(in_features=4, num_classes=3, bias=False).fc.bias is None


def test_cosine_head_is_scaled_cosine_similarity():
    head = CosineHead(in_features=8, num_classes=5, scale=30.0)
    x = torch.randn(4, 8) * 7
    pairwise = F.cosine_similarity(x[:, None, :], head.weight[None, :, :], dim=2)
    torch.testing.assert_close(head(x), 30.0 * pairwise)
    assert [n for n, _ in head.named_parameters()] == ["weight"]  # no bias


def test_lws_initially_equals_linear_and_trains_only_the_scales():
    linear = LinearHead(in_features=6, num_classes=4)
    lws = LWSHead(in_features=6, num_classes=4)
    missing = lws.load_state_dict(linear.state_dict(), strict=False).missing_keys
    assert missing == ["scales"]  # a stage-1 LinearHead loads into it by name
    x = torch.randn(5, 6)
    torch.testing.assert_close(lws(x), linear(x))
    assert [n for n, p in lws.named_parameters() if p.requires_grad] == ["scales"]
    with torch.no_grad():
        lws.scales.copy_(torch.tensor([0.5, 1.0, 2.0, 3.0]))
    torch.testing.assert_close(lws(x), linear(x) * torch.tensor([0.5, 1.0, 2.0, 3.0]))


def test_reset_parameters():
    linear = LinearHead(in_features=6, num_classes=4)
    before = linear.fc.weight.clone()
    linear.reset_parameters()
    assert not torch.equal(before, linear.fc.weight)
    cosine = CosineHead(in_features=6, num_classes=4)
    before = cosine.weight.clone()
    cosine.reset_parameters()
    assert not torch.equal(before, cosine.weight)
    lws = LWSHead(in_features=6, num_classes=4)
    fc_before = lws.fc.weight.clone()
    with torch.no_grad():
        lws.scales.mul_(3.0)
    lws.reset_parameters()
    assert torch.equal(lws.scales, torch.ones(4))
    assert torch.equal(lws.fc.weight, fc_before)  # the stage-1 classifier is kept


def test_heads_from_config(model_cfg):
    model_cfg.MODEL.HEAD.BIAS = False
    model_cfg.MODEL.HEAD.TAU_NORM = 0.7
    head = build_head(model_cfg, in_features=5, num_classes=3)
    assert isinstance(head, LinearHead) and head.tau == 0.7 and head.fc.bias is None
    model_cfg.MODEL.HEAD.TAU_NORM = -1.0
    model_cfg.MODEL.HEAD.NAME = "CosineHead"
    model_cfg.MODEL.HEAD.COSINE_SCALE = 16.0
    head = build_head(model_cfg, in_features=5, num_classes=3)
    assert isinstance(head, CosineHead) and head.scale == 16.0
    model_cfg.MODEL.HEAD.NAME = "LWSHead"
    assert build_head(model_cfg, in_features=5, num_classes=3).fc.bias is None


@pytest.mark.parametrize("name", ["CosineHead", "LWSHead"])
def test_tau_norm_on_other_heads_is_a_config_error(model_cfg, name):
    model_cfg.MODEL.HEAD.NAME = name
    model_cfg.MODEL.HEAD.TAU_NORM = 1.0
    with pytest.raises(ConfigError, match="TAU_NORM"):
        build_head(model_cfg, in_features=5, num_classes=3)


def test_bad_head_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        LinearHead(in_features=4, num_classes=0)
    with pytest.raises(ValueError, match="COSINE_SCALE"):
        CosineHead(in_features=4, num_classes=2, scale=0.0)


def test_lws_gradient_reaches_only_the_scales():
    lws = LWSHead(in_features=6, num_classes=4)
    lws(torch.randn(5, 6)).pow(2).sum().backward()
    assert lws.scales.grad is not None and lws.scales.grad.abs().sum() > 0
    assert lws.fc.weight.grad is None and lws.fc.bias.grad is None
