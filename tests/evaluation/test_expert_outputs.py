"""Multi-expert evaluation: each expert's top-1, experts used, the router sweep and its report."""

import pytest
import torch
from torch import nn

from ride_dive.config import get_cfg
from ride_dive.evaluation import (
    experts_used_distribution,
    format_results_table,
    format_router_table,
    inference_on_dataset,
    plot_router_tradeoff,
    router_tradeoff,
    select_router_threshold,
)
from ride_dive.modeling import build_model


class _FixedExperts(nn.Module):
    """Eval output of a 3-expert model on 4 samples (label = index % 2), one batch per call."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.expert_logits = torch.tensor(
            [
                [[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]],  # right, right, right, wrong
                [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]],  # wrong, right, right, right
                [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],  # wrong, wrong, wrong, wrong
            ]
        )

    def forward(self, images):
        idx = images[:, 0, 0, 0].long()
        logits = self.expert_logits[:, idx] * self.scale
        return {
            "logits": logits.mean(dim=0),
            "expert_logits": logits,
            "experts_used": torch.tensor([1, 2, 2, 3])[idx],
        }


def _loader():
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    labels = torch.tensor([0, 1, 0, 1])
    return [(images[:2], labels[:2]), (images[2:], labels[2:])]


def test_inference_reports_each_expert_and_experts_used():
    results = inference_on_dataset(_FixedExperts(), _loader(), None, "cpu")
    assert results["expert_top1"] == pytest.approx([75.0, 75.0, 0.0])
    assert results["experts_used"] == {"1": 25.0, "2": 50.0, "3": 25.0}
    assert results["experts_used_mean"] == pytest.approx(2.0)
    table = format_results_table(results)
    assert "experts top1: 75.00  75.00  0.00" in table
    assert "2: 50.00%" in table


def test_experts_used_distribution_lists_every_count():
    assert experts_used_distribution(torch.tensor([1, 1, 4]), 4) == pytest.approx(
        {"1": 200 / 3, "2": 0.0, "3": 0.0, "4": 100 / 3}
    )


@pytest.fixture
def router_model():
    torch.manual_seed(0)
    model_cfg = get_cfg()
    model_cfg.MODEL.DEVICE = "cpu"
    model_cfg.MODEL.BACKBONE.WIDTH_MULT = 0.25
    model_cfg.MODEL.META_ARCHITECTURE = "RIDE"
    model_cfg.MODEL.BACKBONE.NAME = "RIDEResNet32"
    model_cfg.MODEL.RIDE.NUM_EXPERTS = 3
    model_cfg.MODEL.HEAD.NAME = "CosineHead"
    model_cfg.MODEL.LOSS.NAME = "RIDELoss"
    model_cfg.MODEL.LOSS.RIDE.BASE_LOSS = "CrossEntropyLoss"
    model_cfg.MODEL.ROUTER.ENABLED = True
    model = build_model(model_cfg, [30, 20, 10, 5])
    with torch.no_grad():
        model.router.out.weight.normal_(0.0, 2.0)
    return model.eval()


def test_router_sweep_matches_early_exit_and_weights_macs(router_model, tmp_path):
    torch.manual_seed(3)
    loader = [(torch.randn(16, 3, 16, 16), torch.randint(0, 4, (16,))) for _ in range(2)]
    with torch.no_grad():  # a threshold that sends about half the samples on
        logits = router_model.forward_all(torch.cat([x for x, _ in loader]))["router_logits"]
    threshold = round(float(torch.sigmoid(logits[0].median())), 6)
    router_model.router_threshold = threshold
    report = router_tradeoff(
        router_model,
        loader,
        [30, 20, 10, 5],
        "cpu",
        (3, 16, 16),
        thresholds=[0.0, 1.0],
        threshold=threshold,
    )
    assert [row["threshold"] for row in report["sweep"]] == [0.0, threshold, 1.0]
    assert report["experts_used"]["1"] not in (0.0, 100.0)
    direct = inference_on_dataset(router_model, loader, [30, 20, 10, 5], "cpu")
    assert report["top1"] == pytest.approx(direct["top1"])
    assert report["experts_used"] == pytest.approx(direct["experts_used"])
    macs = report["gmacs_per_expert_count"]
    assert macs[0] < macs[1] < macs[2]
    shares = [report["experts_used"][str(k)] / 100 for k in (1, 2, 3)]
    assert report["gmacs"] == pytest.approx(sum(s * m for s, m in zip(shares, macs)))
    full, _, single = report["sweep"]
    assert full["gmacs"] == pytest.approx(macs[2]) and single["gmacs"] == pytest.approx(macs[0])
    assert full["experts_used"]["3"] == 100.0 and single["experts_used"]["1"] == 100.0
    assert router_model.training is False  # modes are given back after counting MACs
    table = format_router_table(report)
    assert f"{threshold:g}*" in table and "full ensemble" in table  # configured: marked
    assert plot_router_tradeoff(report, str(tmp_path / "sweep.png"))
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def _sweep(rows, full_top1):
    keys = ("threshold", "top1", "experts_used_mean", "gmacs")
    return {"full_ensemble_top1": full_top1, "sweep": [dict(zip(keys, r)) for r in rows]}


def test_select_router_threshold_takes_the_cheapest_row_within_the_drop():
    report = _sweep(
        [
            (0.0, 80.0, 4.00, 0.40),  # the full ensemble
            (0.3, 79.8, 2.50, 0.25),
            (0.5, 79.5, 1.90, 0.19),  # exactly 0.5 below: still allowed
            (0.6, 79.7, 1.90, 0.19),  # same cost, more accurate: preferred
            (0.8, 79.4, 1.20, 0.12),  # 0.6 below: too lossy
        ],
        full_top1=80.0,
    )
    choice = select_router_threshold(report, 0.5)
    assert choice["threshold"] == 0.6 and choice["experts_used_mean"] == 1.90
    assert choice["full_ensemble_top1"] == 80.0 and choice["max_top1_drop"] == 0.5
    assert select_router_threshold(report, 0.0)["threshold"] == 0.0
    assert select_router_threshold(report, 0.61)["threshold"] == 0.8
    # Nothing within the drop (no threshold 0 in the sweep): the most accurate row.
    assert (
        select_router_threshold(_sweep([(0.5, 70.0, 2.0, 0.2), (0.9, 71.0, 1.5, 0.1)], 80.0), 0.5)[
            "threshold"
        ]
        == 0.9
    )
    with pytest.raises(ValueError, match="max_top1_drop"):
        select_router_threshold(report, -1.0)


class _FullEnsemble(nn.Module):
    """The mean of every expert's logits, whatever the router says."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return {"logits": self.model.forward_all(images)["expert_logits"].mean(dim=0)}


def test_router_sweep_reports_the_full_ensemble_top1(router_model):
    torch.manual_seed(4)
    loader = [(torch.randn(16, 3, 16, 16), torch.randint(0, 4, (16,)))]
    report = router_tradeoff(
        router_model, loader, None, "cpu", (3, 16, 16), thresholds=[0.0], threshold=0.5
    )
    full = inference_on_dataset(_FullEnsemble(router_model), loader, None, "cpu")
    assert report["full_ensemble_top1"] == pytest.approx(full["top1"])
    assert report["sweep"][0]["top1"] == pytest.approx(full["top1"])
