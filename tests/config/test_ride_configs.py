"""The RIDE configs encode the published recipes (tests/test_configs.py builds them all)."""

import os

import pytest

from ride_dive.checkpoint import load_model_state
from ride_dive.config import ConfigError
from ride_dive.engine import setup_cfg
from ride_dive.modeling import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# folder, file-name suffix, lambda, alpha, DRW epoch, router top-K
RECIPES = [
    ("CIFAR100-LT", "_r32_if100", -0.45, 0.05, 160, 30),
    ("CIFAR10-LT", "_r32_if100", -0.45, 0.05, 160, 30),
    ("ImageNet-LT", "_x50", -0.2, 0.02, 60, 50),
    ("iNat18", "_r50", -0.2, 0.015, 60, 50),
    ("FashionMNIST-LT", "_r32", -0.45, 0.05, 24, 30),
]


def _load(folder, name, *opts):
    return setup_cfg(os.path.join(ROOT, "configs", folder, name + ".yaml"), list(opts))


def _stage1_files(folder, suffix):
    if folder == "FashionMNIST-LT":
        return [
            ("ride_3e_r32", 3, "LDAMLoss"),
            ("ride_4e_r32", 4, "LDAMLoss"),
            ("ride_3e_bsce_r32", 3, "BalancedSoftmaxLoss"),
            ("ride_4e_bsce_r32", 4, "BalancedSoftmaxLoss"),
            ("ride_6e_bsce_r32", 6, "BalancedSoftmaxLoss"),
        ]
    return [(f"ride_{e}e{suffix}", e, "LDAMLoss") for e in (3, 4, 6)] + [
        (f"ride_6e_bsce{suffix}", 6, "BalancedSoftmaxLoss")
    ]


@pytest.mark.parametrize(
    "folder, suffix, lam, alpha, drw, top_k", RECIPES, ids=[r[0] for r in RECIPES]
)
def test_ride_configs_follow_the_recipe(folder, suffix, lam, alpha, drw, top_k):
    for name, experts, base in _stage1_files(folder, suffix):
        cfg = _load(folder, name)
        m = cfg.MODEL
        assert (m.META_ARCHITECTURE, m.LOSS.NAME, m.HEAD.NAME) == (
            "RIDE",
            "RIDELoss",
            "CosineHead",
        ), name
        assert m.HEAD.COSINE_SCALE == 30.0 and m.RIDE.NUM_EXPERTS == experts, name
        assert (m.LOSS.RIDE.BASE_LOSS, m.LOSS.RIDE.DIVERSITY_WEIGHT) == (base, lam), name
        assert m.LOSS.RIDE.TEMPERATURE_ALPHA == alpha, name
        # BSCE already corrects for the prior: no DRW, and so a constant temperature.
        assert m.LOSS.DRW_EPOCH == (drw if base == "LDAMLoss" else -1), name
        assert cfg.OUTPUT_DIR.endswith("/" + name), name
        assert not m.ROUTER.ENABLED, name
    router = _load(folder, f"ride_4e{suffix}_router")
    assert router.MODEL.ROUTER.ENABLED and router.MODEL.ROUTER.TRAIN
    assert router.MODEL.RIDE.NUM_EXPERTS == 4 and router.MODEL.ROUTER.TOP_K == top_k
    assert router.MODEL.ROUTER.POS_WEIGHT == 100.0
    s = router.SOLVER
    assert (s.MAX_EPOCHS, s.BASE_LR, s.NESTEROV, s.WEIGHT_DECAY, s.LR_SCHEDULER) == (
        5,
        0.01,
        True,
        5e-4,
        "cosine",
    )
    assert router.DATALOADER.SAMPLER == "ClassAwareSampler"


def test_cifar_ride_schedule():
    s = _load("CIFAR100-LT", "ride_3e_r32_if100").SOLVER
    assert (s.MAX_EPOCHS, s.WEIGHT_DECAY, tuple(s.STEPS), s.GAMMA) == (200, 5e-4, (160, 180), 0.01)
    s = _load("ImageNet-LT", "ride_3e_x50").SOLVER
    assert (s.MAX_EPOCHS, s.WEIGHT_DECAY) == (100, 2e-4)


@pytest.mark.parametrize(
    "opts, fragment",
    [
        (["MODEL.ROUTER.TRAIN", "True"], "needs MODEL.ROUTER.ENABLED"),
        (["MODEL.ROUTER.ENABLED", "True"], "MODEL.ROUTER.ENABLED needs"),
        (["MODEL.LOSS.NAME", "'RIDELoss'"], "needs MODEL.META_ARCHITECTURE='RIDE'"),
        (["MODEL.LOSS.RIDE.TEMPERATURE_ALPHA", "1.5"], "TEMPERATURE_ALPHA"),
        (["MODEL.RIDE.NUM_EXPERTS", "0"], "NUM_EXPERTS"),
        (["TEST.ROUTER_THRESHOLDS", "[-0.1]"], "ROUTER_THRESHOLDS"),
    ],
)
def test_inconsistent_ride_settings_are_rejected(opts, fragment):
    with pytest.raises(ConfigError, match=fragment):
        setup_cfg("", opts)


@pytest.mark.parametrize(
    "folder, suffix", [(r[0], r[1]) for r in RECIPES], ids=[r[0] for r in RECIPES]
)
def test_router_stage_reads_its_stage1_weights(folder, suffix):
    """The router config builds its stage-1 architecture plus routers, so the weights fit."""
    tiny = ("MODEL.BACKBONE.WIDTH_MULT", "0.25", "MODEL.DEVICE", "cpu")
    counts = [50, 30, 20, 10, 5]
    stage1 = build_model(_load(folder, f"ride_4e{suffix}", *tiny), counts)
    router = build_model(_load(folder, f"ride_4e{suffix}_router", *tiny), counts)
    report = load_model_state(router, stage1.state_dict())
    assert report["newly_initialized"] and all(
        k.startswith("router.") for k in report["newly_initialized"]
    )
    assert not (report["missing"] or report["unexpected"] or report["shape_mismatch"])
