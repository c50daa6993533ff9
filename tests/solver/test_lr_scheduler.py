"""Warm-up per iteration, multistep in epochs, cosine, and the optimizer's parameter groups."""

import math

import pytest
import torch
from torch import nn

from ride_dive.config import get_cfg
from ride_dive.solver import build_lr_scheduler, build_optimizer, lr_multiplier


def test_warmup_is_linear_per_iteration():
    # 10 iterations per epoch, 2 warm-up epochs: 20 warm-up iterations from 0 to 1.
    f = [lr_multiplier(i, 10, 100, warmup_epochs=2, steps=(50,)) for i in range(21)]
    assert f[0] == pytest.approx(1 / 20)
    assert f[9] == pytest.approx(10 / 20)
    assert f[19] == pytest.approx(1.0)
    assert f[20] == 1.0


def test_multistep_epochs_converted_to_iterations():
    kw = dict(iters_per_epoch=10, max_epochs=200, steps=(160, 180), gamma=0.01)
    assert lr_multiplier(1599, **kw) == 1.0
    assert lr_multiplier(1600, **kw) == pytest.approx(0.01)
    assert lr_multiplier(1800, **kw) == pytest.approx(1e-4)


def test_cosine_after_warmup():
    kw = dict(iters_per_epoch=10, max_epochs=10, warmup_epochs=2, schedule="cosine")
    assert lr_multiplier(20, **kw) == pytest.approx(1.0)
    assert lr_multiplier(60, **kw) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_multiplier(100, **kw) == pytest.approx(0.0, abs=1e-12)


def test_scheduler_steps_the_optimizer_lr():
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "SOLVER.MAX_EPOCHS",
            "4",
            "SOLVER.WARMUP_EPOCHS",
            "1",
            "SOLVER.STEPS",
            "(2,)",
            "SOLVER.GAMMA",
            "0.1",
            "SOLVER.BASE_LR",
            "0.2",
        ]
    )
    model = nn.Linear(3, 2)
    opt = build_optimizer(cfg, model)
    sched = build_lr_scheduler(cfg, opt, iters_per_epoch=5)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.2 / 5)
    assert lrs[4] == pytest.approx(0.2)
    assert lrs[9] == pytest.approx(0.2)
    assert lrs[10] == pytest.approx(0.02)


def test_optimizer_skips_frozen_and_can_exempt_norm_from_decay():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model[2].weight.requires_grad_(False)
    opt = build_optimizer(model=model, lr=0.1, weight_decay=1e-3, decay_norm=False, nesterov=True)
    params = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert id(model[2].weight) not in params
    assert params[id(model[0].weight)] == 1e-3
    assert params[id(model[1].weight)] == 0.0 and params[id(model[0].bias)] == 0.0
    assert opt.param_groups[0]["nesterov"]
    with pytest.raises(ValueError, match="no trainable"):
        build_optimizer(model=nn.Linear(2, 2).requires_grad_(False))


def test_optimizer_from_cfg_uses_solver_keys():
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.BASE_LR", "0.3", "SOLVER.MOMENTUM", "0.5"])
    opt = build_optimizer(cfg, nn.Linear(2, 2))
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["momentum"] == 0.5
    assert isinstance(opt, torch.optim.SGD)
