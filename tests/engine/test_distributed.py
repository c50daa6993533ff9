"""Two gloo processes on 127.0.0.1 against one process, through the real command line.

The model uses GroupNorm (batch-independent, like SyncBN would be on GPUs) and no random
augmentation, so a global batch B split over 2 processes must give the weights that 1
process gets with batch B: the samplers hand rank r the items r::2 of the same global
sequence, DDP averages the two half-batch gradients, and every loss is a batch mean.
"""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, tiny_overrides

TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")

# 5 classes so the 15-image test split shards unevenly (7 + 8) across two processes.
_SETTINGS = {
    "MODEL.BACKBONE.NORM": "GN",
    "MODEL.BACKBONE.GN_GROUPS": 1,
    "DATASETS.SYNTHETIC.NUM_CLASSES": 5,
    "DATASETS.SYNTHETIC.TEST_PER_CLASS": 3,
    "INPUT.PADDING": 0,  # no random crop ...
    "INPUT.HFLIP": False,  # ... and no flip: both runs see identical pixels
    "DATALOADER.DROP_LAST": True,
    "SOLVER.BATCH_SIZE": 16,  # global: 8 per process in the two-process runs
    "SOLVER.MAX_EPOCHS": 2,
    "SOLVER.CHECKPOINT_PERIOD": 2,
    "TEST.BATCH_SIZE": 8,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    env.pop("RANK", None)
    return env


def _run(cmd, timeout=240):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env())
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    return r


def _weights(out_dir):
    return torch.load(os.path.join(out_dir, "model_final.pth"), weights_only=True)["model"]


def _results(out_dir):
    with open(os.path.join(out_dir, "results.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "single"
    r = _run([sys.executable, TRAIN_NET] + tiny_overrides(out, **_SETTINGS))
    return out, r


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_num_gpus_two_gloo_processes_match_one_process(single, tmp_path):
    single_dir, single_run = single
    out = tmp_path / "two"
    r = _run(
        [
            sys.executable,
            TRAIN_NET,
            "--num-gpus",
            "2",
            "--dist-url",
            f"tcp://127.0.0.1:{_free_port()}",
        ]
        + tiny_overrides(out, **_SETTINGS)
    )
    _assert_same_weights(_weights(single_dir), _weights(out))
    # Only rank 0 writes: one log file, one metrics file, one set of checkpoints.
    assert sorted(p for p in os.listdir(out) if p.endswith(".pth")) == [
        "model_epoch_0002.pth",
        "model_final.pth",
    ]
    assert "Processes: 2" in open(out / "log.txt").read()
    assert "Processes: 2" not in open(single_dir / "log.txt").read()
    # The LR is stated for the global batch; both runs use the same one.
    assert "effective batch 16 (SOLVER.BATCH_SIZE = 2 process(es) x 8 images)" in r.stdout
    # Logged losses are averaged over the ranks: the global batch's mean loss.
    first_single = json.loads(open(single_dir / "metrics.json").readline())
    first_two = json.loads(open(out / "metrics.json").readline())
    assert first_two["total_loss"] == pytest.approx(first_single["total_loss"], rel=1e-4)


def test_torchrun_matches_one_process(single, tmp_path):
    single_dir, _ = single
    out = tmp_path / "torchrun"
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            TRAIN_NET,
        ]
        + tiny_overrides(out, **_SETTINGS)
    )
    _assert_same_weights(_weights(single_dir), _weights(out))


def test_distributed_evaluation_equals_single_process(single, tmp_path):
    single_dir, _ = single
    weights = str(single_dir / "model_final.pth")
    runs = {}
    for procs in (1, 2):
        out = tmp_path / f"eval{procs}"
        _run(
            [
                sys.executable,
                TRAIN_NET,
                "--eval-only",
                "--num-gpus",
                str(procs),
                "--dist-url",
                f"tcp://127.0.0.1:{_free_port()}",
            ]
            + tiny_overrides(out, **_SETTINGS, **{"MODEL.WEIGHTS": weights})
        )
        runs[procs] = _results(out)
    one, two = runs[1], runs[2]
    assert one["num_samples"] == two["num_samples"] == 15  # none dropped, none twice
    for key in ("top1", "top5", "per_class", "medium", "few"):
        assert one.get(key) == two.get(key), key
    assert two["ece"] == pytest.approx(one["ece"], abs=1e-4)


def test_dive_student_two_processes_match_one_process(single, tmp_path):
    """The teacher stays outside DDP (no parameters to synchronise) and runs on each rank's
    half of the batch; the distilled student still equals the single-process one."""
    teacher_dir, _ = single
    student = dict(
        _SETTINGS,
        **{
            "MODEL.LOSS.NAME": "DiVELoss",
            "MODEL.TEACHER.CONFIG_FILE": str(teacher_dir / "config.yaml"),
            "MODEL.TEACHER.WEIGHTS": str(teacher_dir / "model_final.pth"),
            "DISTILL.TEMPERATURE": 3.0,
            "SEED": 1,
        },
    )
    _run([sys.executable, TRAIN_NET] + tiny_overrides(tmp_path / "one", **student))
    _run(
        [
            sys.executable,
            TRAIN_NET,
            "--num-gpus",
            "2",
            "--dist-url",
            f"tcp://127.0.0.1:{_free_port()}",
        ]
        + tiny_overrides(tmp_path / "two", **student)
    )
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert not any(k.startswith("teacher") for k in two)
    _assert_same_weights(one, two)


def test_an_error_in_the_processes_is_one_paragraph_per_process(tmp_path):
    """A missing dataset is met inside the spawned processes (the config itself is valid):
    each prints its own ERROR line, the launcher stops the job, no traceback wall."""
    r = subprocess.run(
        [
            sys.executable,
            TRAIN_NET,
            "--num-gpus",
            "2",
            "--dist-url",
            f"tcp://127.0.0.1:{_free_port()}",
        ]
        + tiny_overrides(
            tmp_path / "out",
            **{"DATASETS.NAME": "CIFAR10LT", "DATASETS.ROOT": str(tmp_path / "nowhere")},
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=_env(),
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    # Whichever process fails first is reported; the other may be stopped before it prints.
    assert re.search(r"ERROR \(process [01]\): CIFAR10LT: directory not found", r.stderr)
    assert "stopped with exit status 2" in r.stderr


def test_an_invalid_config_stops_before_any_process_starts(tmp_path):
    r = subprocess.run(
        [sys.executable, TRAIN_NET, "--num-gpus", "2"]
        + tiny_overrides(tmp_path / "out", **{"SOLVER.MAX_EPOCHS": -1}),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=_env(),
    )
    assert r.returncode == 2
    assert r.stderr.startswith("ERROR: Inconsistent config")
    assert "process" not in r.stderr and not (tmp_path / "out").exists()
