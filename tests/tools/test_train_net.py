"""tools/train_net.py end to end: CLI errors, eval-only, and the Fashion-MNIST-LT smoke run."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, tiny_overrides

TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")
FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def _run(args, timeout=300):
    return subprocess.run(
        [sys.executable, TRAIN_NET, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_unknown_key_is_one_clear_error(tmp_path):
    r = _run(tiny_overrides(tmp_path) + ["SOLVER.BASE_LRR", "0.1"])
    assert r.returncode == 2
    assert "SOLVER.BASE_LRR" in r.stderr and "SOLVER.BASE_LR" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_registry_name_lists_valid_ones(tmp_path):
    r = _run(tiny_overrides(tmp_path) + ["MODEL.LOSS.NAME", "'BSCE'"])
    assert r.returncode == 2
    assert "BalancedSoftmaxLoss" in r.stderr and "Traceback" not in r.stderr


def test_train_then_eval_only(tmp_path):
    out = tmp_path / "run"
    r = _run(tiny_overrides(out, **{"SOLVER.MAX_EPOCHS": 2}))
    assert r.returncode == 0, r.stderr[-2000:]
    first = json.load(open(out / "results.json"))
    assert "top1" in r.stdout  # the results table is printed
    r = _run(
        ["--eval-only"]
        + tiny_overrides(tmp_path / "eval", **{"MODEL.WEIGHTS": str(out / "model_final.pth")})
    )
    assert r.returncode == 0, r.stderr[-2000:]
    second = json.load(open(tmp_path / "eval" / "results.json"))
    assert second["top1"] == pytest.approx(first["top1"])


def test_corrupt_weights_give_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    r = _run(["--eval-only"] + tiny_overrides(tmp_path / "o", **{"MODEL.WEIGHTS": str(bad)}))
    assert r.returncode == 2 and "bad.pth" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not os.path.isfile(FMNIST), reason="needs Debian's dataset-fashion-mnist")
def test_fashion_mnist_lt_smoke_run_beats_chance(tmp_path):
    """Real data: 3 epochs of a half-width ResNet-32 with BSCE on Fashion-MNIST-LT."""
    r = _run(
        [
            "--config-file",
            os.path.join(ROOT, "configs/FashionMNIST-LT/bsce_r32.yaml"),
            "SOLVER.MAX_EPOCHS",
            "3",
            "SOLVER.WARMUP_EPOCHS",
            "1",
            "TEST.EVAL_PERIOD",
            "0",
            "MODEL.BACKBONE.WIDTH_MULT",
            "0.5",
            "OUTPUT_DIR",
            str(tmp_path / "fm"),
            "MODEL.DEVICE",
            "cpu",
        ],
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.load(open(tmp_path / "fm" / "results.json"))
    assert res["top1"] > 40.0  # 10 balanced test classes: chance is 10%
    assert {"many", "few"} <= set(res)
