"""Classifier meta-architecture: train/eval outputs, BSCE at test, freezing, learning."""

import pytest
import torch
import torch.nn.functional as F

from ride_dive.config import ConfigError
from ride_dive.modeling import build_model
from ride_dive.modeling.backbones import ResNet32
from ride_dive.modeling.heads import LinearHead
from ride_dive.modeling.losses import CrossEntropyLoss
from ride_dive.modeling.meta_arch import Classifier

COUNTS = [40, 20, 10, 5]


def test_default_config_runs_in_train_and_eval_mode(model_cfg):
    model = build_model(model_cfg, COUNTS)
    images, targets = torch.randn(6, 3, 32, 32), torch.randint(0, 4, (6,))
    losses = model(images, targets)
    assert set(losses) == {"loss_cls"} and losses["loss_cls"].dim() == 0
    assert torch.isfinite(losses["loss_cls"])
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert logits.shape == (6, 4) and logits.dtype == torch.float32


def test_train_mode_needs_targets(model_cfg):
    with pytest.raises(ValueError, match="needs targets"):
        build_model(model_cfg, COUNTS)(torch.randn(2, 3, 8, 8))


def test_number_of_classes(model_cfg):
    model_cfg.MODEL.NUM_CLASSES = 7
    model = build_model(model_cfg)  # plain CE needs no counts
    assert model.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 7)
    with pytest.raises(ConfigError, match="NUM_CLASSES=7"):
        build_model(model_cfg, COUNTS)
    model_cfg.MODEL.NUM_CLASSES = 0
    with pytest.raises(ConfigError, match="class_counts"):
        build_model(model_cfg)


def test_balanced_softmax_adds_the_prior_in_training_only(model_cfg):
    model_cfg.MODEL.LOSS.NAME = "BalancedSoftmaxLoss"
    model = build_model(model_cfg, COUNTS)
    images, targets = torch.randn(5, 3, 8, 8), torch.randint(0, 4, (5,))
    model.eval()
    with torch.no_grad():
        plain = model.head(model.backbone(images))
        torch.testing.assert_close(model(images), plain)
    # BN in eval mode gives the train-mode loss the same logits as above.
    model.train()
    model.backbone.eval()
    loss = model(images, targets)["loss_cls"]
    expected = F.cross_entropy(plain + torch.tensor(COUNTS, dtype=torch.float).log(), targets)
    torch.testing.assert_close(loss.detach(), expected)


def test_set_epoch_reaches_the_loss(model_cfg):
    model_cfg.MODEL.LOSS.DRW_EPOCH = 3
    model = build_model(model_cfg, COUNTS)
    model.set_epoch(3)
    assert model.loss.epoch == 3 and model.loss.drw_active


def test_frozen_backbone_trains_only_the_head(model_cfg):
    model_cfg.MODEL.BACKBONE.FREEZE = True
    model = build_model(model_cfg, COUNTS).train()
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head.fc.weight.clone()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.5)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(8, 3, 8, 8) * 4, torch.randint(0, 4, (8,)))["loss_cls"].backward()
        optimizer.step()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    assert not torch.equal(head_before, model.head.fc.weight)


def test_extract_features_matches_backbone(model_cfg):
    model = build_model(model_cfg, COUNTS).eval()
    images = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(model.extract_features(images), model.backbone(images))


def _separable_data(n_per_class=16, classes=4, size=8):
    # Each class lights up its own quadrant; the noise keeps the task non-trivial.
    images = torch.randn(n_per_class * classes, 1, size, size) * 0.5
    targets = torch.arange(classes).repeat_interleave(n_per_class)
    half = size // 2
    for c in range(classes):
        r, k = divmod(c, 2)
        images[targets == c, :, r * half : (r + 1) * half, k * half : (k + 1) * half] += 2
    return images, targets


def test_training_on_separable_data_lowers_the_loss():
    model = Classifier(
        backbone=ResNet32(in_channels=1, width_mult=0.25),
        head=LinearHead(in_features=16, num_classes=4),
        loss=CrossEntropyLoss(),
    ).train()
    images, targets = _separable_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = model(images, targets)["loss_cls"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3
    model.eval()
    with torch.no_grad():
        accuracy = (model(images).argmax(1) == targets).float().mean().item()
    assert accuracy > 0.9
