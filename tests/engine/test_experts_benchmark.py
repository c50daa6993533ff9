"""``tools/benchmark.py experts``: the vmapped experts compute what the model computes."""

import pytest
import torch

from benchmarks.experts import vmapped_expert_features
from ride_dive.engine import setup_cfg
from ride_dive.modeling import build_model


@pytest.mark.parametrize("batched,normalize", [(False, False), (True, True)])
def test_vmapped_experts_give_the_backbones_features(batched, normalize):
    cfg = setup_cfg(
        "",
        [
            "MODEL.DEVICE", "cpu",
            "MODEL.META_ARCHITECTURE", "RIDE",
            "MODEL.BACKBONE.NAME", "RIDEResNet32",
            "MODEL.BACKBONE.WIDTH_MULT", "0.25",
            "MODEL.RIDE.NUM_EXPERTS", "3",
            "MODEL.RIDE.BATCHED_EXPERTS", str(batched),
            "MODEL.BACKBONE.NORMALIZE_FEATURES", str(normalize),
            "MODEL.LOSS.NAME", "RIDELoss",
            "MODEL.NUM_CLASSES", "5",
        ],
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg, [5, 4, 3, 2, 1])
    for bn in model.modules():  # statistics that are not the initial identity map
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    backbone = model.backbone.eval()
    images = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        expected = backbone(images)
        got = vmapped_expert_features(backbone)(images)
    assert got.shape == expected.shape == (3, 4, backbone.out_features)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
