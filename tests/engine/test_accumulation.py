"""Gradient accumulation (SOLVER.ACCUMULATE_STEPS): k batches per optimizer step."""

import json
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ride_dive.engine import DefaultTrainer
from ride_dive.engine.train_loop import SimpleTrainer
from ride_dive.solver import describe_lr_scaling, scaled_base_lr
from ride_dive.utils.logger import setup_logger
from tests.engine.resume_check import assert_resume_is_exact

setup_logger("", rank=1)  # quiet


class _Linear(nn.Module):
    """No batch statistics: a k-batch group must equal one k-times larger batch exactly."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(5, 3)

    def forward(self, images, labels):
        return {"loss": F.cross_entropy(self.fc(images), labels)}


class _Batches(list):
    def set_epoch(self, epoch):
        pass


def _one_epoch(batches, accumulate_steps):
    model = _Linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    trainer = SimpleTrainer(
        model,
        _Batches(batches),
        optimizer,
        torch.device("cpu"),
        1,
        accumulate_steps=accumulate_steps,
    )
    trainer.train()
    return model, trainer


def _data(sizes, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)) for n in sizes]


@pytest.mark.parametrize("sizes", [(4, 4), (4, 4, 4), (6, 2)])
def test_k_batches_accumulated_equal_one_batch_k_times_larger(sizes):
    parts = _data(sizes)
    whole = [(torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]))]
    accumulated, trainer = _one_epoch(parts, accumulate_steps=len(sizes))
    single, _ = _one_epoch(whole, accumulate_steps=1)
    assert trainer.iters_per_epoch == 1 and trainer.iter == 1  # one optimizer step
    for a, b in zip(accumulated.parameters(), single.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    # The logged loss is the mean over the group's images, the big batch's loss.
    logged = trainer.storage.latest()["total_loss"][0]
    with torch.no_grad():
        assert logged == pytest.approx(_Linear()(*whole[0])["loss"].item(), rel=1e-5)


def test_a_short_last_group_is_its_own_step():
    parts = _data((4, 4, 4))
    _, trainer = _one_epoch(parts, accumulate_steps=2)
    assert trainer.iters_per_epoch == 2 and trainer.iter == 2
    by_hand = _Linear()
    opt = torch.optim.SGD(by_hand.parameters(), lr=0.5, momentum=0.9)
    for group in (parts[:2], parts[2:]):
        opt.zero_grad()
        x, y = torch.cat([b[0] for b in group]), torch.cat([b[1] for b in group])
        by_hand(x, y)["loss"].backward()
        opt.step()
    for a, b in zip(trainer.model.parameters(), by_hand.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="accumulate_steps"):
        _one_epoch(_data((2,)), accumulate_steps=0)


def test_effective_batch_drives_the_lr_and_is_recorded(tiny_cfg, tmp_path):
    cfg = tiny_cfg(
        **{
            "SOLVER.ACCUMULATE_STEPS": 2,
            "SOLVER.BATCH_SIZE": 16,
            "SOLVER.REFERENCE_BATCH_SIZE": 64,
            "SOLVER.BASE_LR": 0.2,
            "SOLVER.MAX_EPOCHS": 2,
        }
    )
    assert scaled_base_lr(cfg) == pytest.approx(0.2 * 32 / 64)
    assert "effective batch 32" in describe_lr_scaling(cfg, 1)
    assert "x 2 accumulated batches (SOLVER.ACCUMULATE_STEPS)" in describe_lr_scaling(cfg, 1)
    trainer = DefaultTrainer(cfg)
    loader_batches = len(trainer.trainer.data_loader)
    assert trainer.trainer.iters_per_epoch == -(-loader_batches // 2)
    results = trainer.train()
    assert results["effective_batch_size"] == 32
    saved = json.load(open(os.path.join(cfg.OUTPUT_DIR, "results.json")))
    assert saved["effective_batch_size"] == 32
    assert trainer.trainer.iter == 2 * trainer.trainer.iters_per_epoch


def test_accumulated_run_resumes_exactly(tiny_cfg, tmp_path):
    straight = assert_resume_is_exact(
        tiny_cfg, tmp_path, **{"SOLVER.ACCUMULATE_STEPS": 3, "SOLVER.BATCH_SIZE": 8}
    )
    assert straight.trainer.accumulate_steps == 3
