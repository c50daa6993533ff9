"""Crashes: a real SIGKILL mid-epoch, a truncated checkpoint, and a disk that fills up.

Every run ends with exactly the weights of an uninterrupted run: checkpoints hold the whole
training state at epoch boundaries, and an epoch is replayable from (seed, epoch).
"""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ride_dive.checkpoint import CheckpointError
from ride_dive.engine import DefaultTrainer
from tests.conftest import ROOT, tiny_overrides

TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")

# ~30 iterations (~0.5 s) per epoch, so the kill lands inside an epoch, well before the end.
_LONG_RUN = {
    "DATASETS.MAX_PER_CLASS": 120,
    "SOLVER.BATCH_SIZE": 16,
    "SOLVER.MAX_EPOCHS": 5,
    "SOLVER.CHECKPOINT_PERIOD": 1,
    "SOLVER.MAX_TO_KEEP": 2,
    "DETERMINISTIC": True,
}


def _cmd(out_dir, *extra):
    return [sys.executable, TRAIN_NET, *extra] + tiny_overrides(out_dir, **_LONG_RUN)


def _env():
    # One thread: bit-identical floating-point results from run to run.
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)


def _final_weights(out_dir):
    path = os.path.join(out_dir, "model_final.pth")
    return torch.load(path, weights_only=True)["model"]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    straight = subprocess.run(
        _cmd(tmp_path / "straight"),
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert straight.returncode == 0, straight.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(out), env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 240
        # Wait for the epoch-2 checkpoint, then kill somewhere inside epoch 3.
        while not (out / "model_epoch_0002.pth").exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.005)
        time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "model_final.pth").exists()
    # A crash can also leave a damaged newest file behind (e.g. copied or synced while
    # written): resume must warn and fall back to the newest readable checkpoint.
    periodic = sorted(p for p in os.listdir(out) if p.startswith("model_epoch_"))
    newest = out / periodic[-1]
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 3)

    resumed = subprocess.run(
        _cmd(out, "--resume"), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Cannot resume from {newest}" in resumed.stdout + resumed.stderr
    assert "Resuming at epoch" in resumed.stdout
    a, b = _final_weights(tmp_path / "straight"), _final_weights(out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # Pruning kept the configured number of periodic checkpoints.
    kept = [p for p in os.listdir(out) if p.startswith("model_epoch_")]
    assert len(kept) == 2


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_disk_full_while_saving_keeps_previous_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    straight = DefaultTrainer(tiny_cfg(output_dir=tmp_path / "a"))
    straight.trainer.train(0)

    cfg = tiny_cfg(output_dir=tmp_path / "b")
    trainer = DefaultTrainer(cfg)
    real_save = torch.save
    saves = []

    def save_until_disk_is_full(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) == 3:  # the epoch-3 checkpoint: half written, then ENOSPC
            f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_disk_is_full)
    with pytest.raises(CheckpointError) as info:
        trainer.trainer.train(0)
    monkeypatch.undo()
    message = str(info.value)
    assert "No space left on device" in message
    assert "model_epoch_0002.pth" in message and "intact" in message and "--resume" in message
    # No partial file, no temporary file; the record still names the good checkpoint.
    files = sorted(os.listdir(cfg.OUTPUT_DIR))
    assert "model_epoch_0003.pth" not in files
    assert not [f for f in files if f.endswith(".tmp")]
    assert open(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")).read() == "model_epoch_0002.pth"

    resumed = DefaultTrainer(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_epoch == 2
    resumed.trainer.train(resumed.start_epoch)
    a, b = _state(straight.model), _state(resumed.model)
    for key in a:
        assert torch.equal(a[key], b[key]), key
