"""Expert router (docs/METHODS.md section 4): labels, inputs, loss, early exit, router stage."""

import math

import pytest
import torch
import torch.nn.functional as F

from ride_dive.modeling import ExpertRouter, build_model, experts_used, router_labels

COUNTS = [40, 20, 10, 6, 3]


def _router_model(model_cfg, experts=4, train=False, top_k=3):
    model_cfg.MODEL.META_ARCHITECTURE = "RIDE"
    model_cfg.MODEL.BACKBONE.NAME = "RIDEResNet32"
    model_cfg.MODEL.RIDE.NUM_EXPERTS = experts
    model_cfg.MODEL.HEAD.NAME = "CosineHead"
    model_cfg.MODEL.LOSS.NAME = "RIDELoss"
    model_cfg.MODEL.LOSS.RIDE.BASE_LOSS = "CrossEntropyLoss"
    model_cfg.MODEL.ROUTER.ENABLED = True
    model_cfg.MODEL.ROUTER.TRAIN = train
    model_cfg.MODEL.ROUTER.TOP_K = top_k
    model = build_model(model_cfg, COUNTS)
    with torch.no_grad():  # a random router with spread-out decisions
        model.router.out.bias.fill_(0.0)
        model.router.out.weight.normal_(0.0, 2.0)
    return model


def test_router_labels_on_a_hand_made_batch():
    # 3 experts, 2 classes, 4 samples (label 0 each). Ensemble i..k = mean of experts 0..k.
    e = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]],  # expert 0
            [[0.0, 5.0], [3.0, 0.0], [0.0, 1.0], [0.5, 0.0]],  # expert 1
            [[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 4.0]],  # expert 2
        ]
    )
    # Right (label 0) per ensemble: s0: 1 0 0; s1: 0 1 1; s2: 0 0 1; s3: 0 0 0.
    expected = torch.tensor(
        [
            [0.0, 1.0, 1.0, 0.0],  # router 0: ensemble 0 wrong and 0..1 or 0..2 right
            [0.0, 0.0, 1.0, 0.0],  # router 1: ensemble 0..1 wrong and 0..2 right
        ]
    )
    assert torch.equal(router_labels(e, torch.zeros(4, dtype=torch.long)), expected)


def test_router_logit_by_hand():
    router = ExpertRouter(num_experts=3, in_features=4, num_classes=5, hidden_dim=2, top_k=3)
    feature = torch.tensor([[3.0, 0.0, 4.0, 0.0]])
    mean_logits = torch.tensor([[0.5, 2.0, -1.0, 1.0, 3.0]])
    unit = feature / 5.0
    hidden = F.relu(unit @ router.hidden[1].weight.t() + router.hidden[1].bias)
    inputs = torch.cat([hidden, torch.tensor([[3.0, 2.0, 1.0]])], dim=1)  # top-3, descending
    expected = inputs @ router.out.weight.t() + router.out.bias
    torch.testing.assert_close(router.logit(1, feature, mean_logits), expected.view(1))
    assert ExpertRouter(num_experts=2, in_features=4, num_classes=5, top_k=30).top_k == 5


def test_router_loss_is_weighted_bce_by_hand():
    router = ExpertRouter(num_experts=3, in_features=4, num_classes=5, pos_weight=100.0)
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.1]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])

    def bce(x, y):
        p = 1 / (1 + math.exp(-x))
        return -(100.0 * y * math.log(p) + (1 - y) * math.log(1 - p))

    hand = sum(bce(float(x), float(y)) for x, y in zip(logits.flatten(), labels.flatten())) / 4
    assert float(router.loss(logits, labels)) == pytest.approx(hand, rel=1e-5)


def test_experts_used_follows_the_first_stop():
    logits = torch.tensor([[2.0, -2.0, 2.0], [2.0, 2.0, -2.0], [-2.0, 2.0, 2.0]])  # (E-1, N)
    assert experts_used(logits, 0.5).tolist() == [3, 1, 2]
    assert experts_used(torch.full((3, 2), -200.0), 0.0).tolist() == [4, 4]  # p rounds to 0
    assert experts_used(torch.full((3, 2), 200.0), 1.0).tolist() == [1, 1]


def test_early_exit_extremes_equal_full_ensemble_and_expert_one(model_cfg):
    model = _router_model(model_cfg).eval()
    x = torch.randn(10, 3, 16, 16)
    with torch.no_grad():
        experts = model.forward_all(x)["expert_logits"]
        everything = model.early_exit(x, 0.0)
        first = model.early_exit(x, 1.01)
    torch.testing.assert_close(everything["logits"], experts.mean(dim=0))
    assert everything["experts_used"].tolist() == [4] * 10
    torch.testing.assert_close(first["logits"], experts[0])
    assert first["experts_used"].tolist() == [1] * 10


def test_early_exit_matches_the_router_simulation(model_cfg):
    model = _router_model(model_cfg).eval()
    x = torch.randn(24, 3, 16, 16)
    with torch.no_grad():
        everything = model.forward_all(x)
        # A threshold at router 0's median probability splits the batch for sure.
        threshold = float(torch.sigmoid(everything["router_logits"][0].median()))
        model.router_threshold = threshold
        out = model(x)  # the eval forward is early exit at the model's threshold
    predicted = experts_used(everything["router_logits"], threshold)
    assert torch.equal(out["experts_used"], predicted)
    assert len(set(predicted.tolist())) > 1
    cumulative = everything["expert_logits"].cumsum(dim=0)
    for n, k in enumerate(predicted.tolist()):
        torch.testing.assert_close(out["logits"][n], cumulative[k - 1, n] / k)


def test_router_stage_trains_only_the_router(model_cfg):
    model = _router_model(model_cfg, train=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("router.") for n in trainable)
    model.train()
    assert not any(m.training for m in model.backbone.modules())
    assert not any(m.training for m in model.heads.modules())
    out = model(torch.randn(8, 3, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2]))
    assert list(out) == ["loss_router"]
    out["loss_router"].backward()
    assert model.router.out.weight.grad is not None
