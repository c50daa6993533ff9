"""Checkpointer: round trip, strict loading, pruning, resume with fallback."""

import logging
import os

import numpy as np
import pytest
import torch
from torch import nn

from ride_dive.checkpoint import (
    Checkpointer,
    CheckpointError,
    CheckpointMismatchError,
    capture_rng_state,
    restore_rng_state,
)


def _net(out=3):
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, out))


def _trainer(seed):
    torch.manual_seed(seed)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    # MultiStepLR keeps its milestones in a Counter: it must survive weights_only loading.
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 5], gamma=0.1)
    return model, opt, sched


def _steps(model, opt, sched, n):
    g = torch.Generator().manual_seed(123)
    for _ in range(n):
        x, y = torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()


def _params(model):
    return [p.detach().clone() for p in model.state_dict().values()]


def test_round_trip_resumes_training_exactly(tmp_path):
    model, opt, sched = _trainer(0)
    _steps(model, opt, sched, 4)
    ckpt = Checkpointer(model, str(tmp_path), opt, sched)
    rng = capture_rng_state()
    path = ckpt.save(
        "model_epoch_0004",
        epoch=4,
        iteration=40,
        rng=rng,
        sampler={"perm": np.arange(5, dtype=np.int64), "pos": np.int64(2)},
    )
    assert path == str(tmp_path / "model_epoch_0004.pth")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_epoch_0004.pth"]
    assert set(torch.load(path, weights_only=True)) == {
        "model",
        "optimizer",
        "scheduler",
        "epoch",
        "iteration",
        "rng",
        "sampler",
    }
    expected_rand = torch.rand(3)

    model2, opt2, sched2 = _trainer(1)
    extra = Checkpointer(model2, str(tmp_path), opt2, sched2).resume_or_load("", resume=True)
    assert extra["epoch"] == 4 and extra["iteration"] == 40
    assert extra["sampler"]["perm"].tolist() == [0, 1, 2, 3, 4] and extra["sampler"]["pos"] == 2
    restore_rng_state(extra["rng"])
    assert torch.equal(torch.rand(3), expected_rand)
    assert sched2.last_epoch == 4 and sched2.get_last_lr() == sched.get_last_lr()
    # Continuing both runs gives identical weights only if momentum and LR were restored.
    _steps(model, opt, sched, 3)
    _steps(model2, opt2, sched2, 3)
    for a, b in zip(_params(model), _params(model2)):
        assert torch.equal(a, b)


def test_load_bare_state_dict_and_ddp_prefix(tmp_path):
    src = _net()
    torch.save(src.state_dict(), tmp_path / "bare.pth")
    prefixed = {f"module.{k}": v for k, v in src.state_dict().items()}
    torch.save({"model": prefixed}, tmp_path / "prefixed.pth")
    for name in ("bare.pth", "prefixed.pth"):
        dst = _net()
        assert Checkpointer(dst, str(tmp_path)).load(str(tmp_path / name)) == {}
        for a, b in zip(_params(src), _params(dst)):
            assert torch.equal(a, b)


def test_save_unwraps_data_parallel(tmp_path):
    Checkpointer(nn.DataParallel(_net()), str(tmp_path)).save("model_final")
    keys = torch.load(tmp_path / "model_final.pth", weights_only=True)["model"].keys()
    assert keys and not any(k.startswith("module.") for k in keys)


def test_wrong_architecture_names_keys_and_leaves_model(tmp_path):
    torch.save(
        {
            "model": nn.Sequential(
                nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 5), nn.Linear(5, 2)
            ).state_dict()
        },
        tmp_path / "other.pth",
    )
    model = _net(out=3)
    before = _params(model)
    ckpt = Checkpointer(model, str(tmp_path))
    with pytest.raises(CheckpointMismatchError) as info:
        ckpt.load(str(tmp_path / "other.pth"))
    msg = str(info.value)
    assert "other.pth" in msg and "4.weight" in msg and "4.bias" in msg  # unexpected
    assert "3.weight (5, 6) in file vs (3, 6) in model" in msg  # shape mismatch
    for a, b in zip(before, _params(model)):
        assert torch.equal(a, b)


def test_non_strict_loads_fitting_keys_and_warns(tmp_path, caplog):
    src = _net(out=5)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    model = _net(out=3)
    with caplog.at_level(logging.WARNING):
        Checkpointer(model, str(tmp_path)).load(str(tmp_path / "w.pth"), strict=False)
    assert "3.weight" in caplog.text and "3.bias" in caplog.text
    assert torch.equal(model[0].weight, src[0].weight)
    assert not torch.equal(model[3].weight[:3], src[3].weight[:3])


def test_file_without_weights_is_checkpoint_error(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="list.pth"):
        Checkpointer(_net(), str(tmp_path)).load(str(tmp_path / "list.pth"))


def test_pruning_keeps_newest_periodic_and_named(tmp_path):
    ckpt = Checkpointer(_net(), str(tmp_path), max_to_keep=2)
    for epoch in (1, 2, 3):
        ckpt.save(Checkpointer.periodic_name(epoch), epoch=epoch)
    ckpt.save("model_best", tag_last=False)
    ckpt.save(Checkpointer.periodic_name(4), epoch=4)
    ckpt.save("model_final", epoch=4)
    assert sorted(os.listdir(tmp_path)) == [
        "last_checkpoint",
        "model_best.pth",
        "model_epoch_0003.pth",
        "model_epoch_0004.pth",
        "model_final.pth",
    ]
    assert ckpt.get_checkpoint_file() == str(tmp_path / "model_final.pth")
    keep_all = Checkpointer(_net(), str(tmp_path / "all"), max_to_keep=0)
    for epoch in range(4):
        keep_all.save(Checkpointer.periodic_name(epoch))
    assert len(keep_all.get_periodic_checkpoints()) == 4


def test_non_main_process_writes_nothing(tmp_path):
    ckpt = Checkpointer(_net(), str(tmp_path / "out"), is_main_process=False)
    assert ckpt.save("model_final") is None
    assert not (tmp_path / "out").exists() and not ckpt.has_checkpoint()


def test_resume_falls_back_when_latest_is_truncated(tmp_path, caplog):
    model, opt, sched = _trainer(0)
    ckpt = Checkpointer(model, str(tmp_path), opt, sched)
    _steps(model, opt, sched, 1)
    ckpt.save("model_epoch_0001", epoch=1)
    good = _params(model)
    _steps(model, opt, sched, 1)
    ckpt.save("model_epoch_0002", epoch=2)
    latest = tmp_path / "model_epoch_0002.pth"
    with open(latest, "r+b") as f:
        f.truncate(os.path.getsize(latest) // 3)

    model2, opt2, sched2 = _trainer(1)
    with caplog.at_level(logging.WARNING):
        extra = Checkpointer(model2, str(tmp_path), opt2, sched2).resume_or_load("", True)
    assert extra["epoch"] == 1 and sched2.last_epoch == 1
    assert "model_epoch_0002.pth" in caplog.text
    for a, b in zip(good, _params(model2)):
        assert torch.equal(a, b)
    # With every checkpoint unreadable, resuming is an error, not a silent fresh start.
    (tmp_path / "model_epoch_0001.pth").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="none of its checkpoints"):
        Checkpointer(_net(), str(tmp_path)).resume_or_load("", resume=True)


def test_no_resume_loads_weights_only(tmp_path):
    src_model, src_opt, src_sched = _trainer(0)
    _steps(src_model, src_opt, src_sched, 2)
    Checkpointer(src_model, str(tmp_path / "src"), src_opt, src_sched).save("model_final", epoch=2)
    model, opt, sched = _trainer(1)
    ckpt = Checkpointer(model, str(tmp_path / "run"), opt, sched)
    assert ckpt.resume_or_load(str(tmp_path / "src" / "model_final.pth"), resume=True) == {}
    assert sched.last_epoch == 0 and opt.state_dict()["state"] == {}
    for a, b in zip(_params(src_model), _params(model)):
        assert torch.equal(a, b)
    untouched = _params(model)
    assert ckpt.resume_or_load("", resume=True) == {}
    for a, b in zip(untouched, _params(model)):
        assert torch.equal(a, b)


# What torch's zip writer raises when the disk fills up mid-save (not an OSError).
_ZIP_WRITER_FULL = (
    "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
    "data/3: file write failed"
)


def test_disk_full_in_torchs_zip_writer_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    model = _net()
    ckpt = Checkpointer(model, str(tmp_path))
    first = ckpt.save(Checkpointer.periodic_name(1), epoch=1)
    before = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError(_ZIP_WRITER_FULL)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError) as info:
        ckpt.save(Checkpointer.periodic_name(2), epoch=2)
    monkeypatch.undo()
    message = str(info.value)
    assert message.startswith(f"Could not write checkpoint {tmp_path / 'model_epoch_0002.pth'}")
    assert "inline_container" in message and "Nothing was overwritten" in message
    assert f"the last complete checkpoint ({first}) is intact" in message
    assert isinstance(info.value.__cause__, OSError)  # one chain, no second traceback
    # Same files, same bytes: no temporary file left, last_checkpoint unchanged.
    assert {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)} == before


def test_other_runtime_errors_while_saving_are_not_taken_for_a_full_disk(tmp_path, monkeypatch):
    def bug(obj, f, *args, **kwargs):
        raise RuntimeError("a bug in a state_dict")

    monkeypatch.setattr(torch, "save", bug)
    with pytest.raises(RuntimeError, match="a bug") as info:
        Checkpointer(_net(), str(tmp_path)).save("model_final")
    assert not isinstance(info.value, (CheckpointError, OSError))
    assert os.listdir(tmp_path) == []


# --- RIDE models: routers, experts, classes, widths ------------------------------------------


def _ride(tiny_cfg, **extra):
    from ride_dive.modeling import build_model
    from tests.conftest import RIDE_OVERRIDES

    cfg = tiny_cfg(**{**RIDE_OVERRIDES, "MODEL.RIDE.NUM_EXPERTS": 3, **extra})
    counts = [40, 30, 20, 15, 10, 8, 6, 5, 4, 4]
    return build_model(cfg, [1] * cfg.MODEL.NUM_CLASSES if cfg.MODEL.NUM_CLASSES else counts), cfg


def cfg_router(train: bool) -> dict:
    return {"MODEL.ROUTER.ENABLED": True, "MODEL.ROUTER.TRAIN": train}


@pytest.fixture
def stage1_file(tiny_cfg, tmp_path):
    """Weights of a 3-expert RIDE model without routers (a stage-1 model_final.pth)."""
    return Checkpointer(_ride(tiny_cfg)[0], str(tmp_path / "stage1")).save("model_final")


def test_evaluating_routers_the_file_lacks_is_an_error_naming_what_to_do(tiny_cfg, stage1_file):
    from ride_dive.checkpoint import load_trained_model

    routed, cfg = _ride(tiny_cfg, **{"MODEL.ROUTER.ENABLED": True})
    before = _params(routed)
    with pytest.raises(CheckpointMismatchError) as info:
        Checkpointer(routed, "").load(stage1_file, checkpointables=[])
    message = str(info.value)
    assert "missing keys (6): router.hidden.0.weight" in message
    assert "evaluate these weights with the experts' config (MODEL.ROUTER.ENABLED False)" in (
        message
    )
    assert "MODEL.ROUTER.TRAIN True" in message and "strict=False" not in message
    for a, b in zip(before, _params(routed)):  # refused: the model is untouched
        assert torch.equal(a, b)
    with pytest.raises(CheckpointMismatchError, match="ROUTER.ENABLED False"):
        load_trained_model(cfg, [1] * 10, weights=stage1_file)


def test_a_router_stage_trains_new_routers_but_never_evaluates_them(tiny_cfg, stage1_file):
    from ride_dive.checkpoint import load_trained_model

    stage, cfg = _ride(tiny_cfg, **{"MODEL.ROUTER.ENABLED": True, "MODEL.ROUTER.TRAIN": True})
    # Training the router stage: its routers are new, the rest comes from the file.
    Checkpointer(stage, "").resume_or_load(stage1_file, resume=False)
    # --eval-only with the router stage's config would report random routers' exits.
    for load in (
        lambda: Checkpointer(_ride(tiny_cfg, **cfg_router(True))[0], "").resume_or_load(
            stage1_file, resume=False, training=False
        ),
        lambda: load_trained_model(cfg, [1] * 10, weights=stage1_file),
    ):
        with pytest.raises(CheckpointMismatchError) as info:
            load()
        assert "router.out.weight" in str(info.value)
        assert "config is a router stage (MODEL.ROUTER.TRAIN True)" in str(info.value)
        assert "would run untrained routers" in str(info.value)


def test_eval_only_of_a_router_stage_on_stage1_weights_fails_with_exit_2(
    tiny_cfg, stage1_file, tmp_path
):
    import subprocess
    import sys

    from tests.conftest import RIDE_OVERRIDES, ROOT, tiny_overrides

    opts = tiny_overrides(
        tmp_path / "eval",
        **{**RIDE_OVERRIDES, "MODEL.RIDE.NUM_EXPERTS": 3, **cfg_router(True)},
        **{"MODEL.WEIGHTS": stage1_file},
    )
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--eval-only", *opts],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "ERROR: " in run.stderr and "Traceback" not in run.stderr
    assert "would run untrained routers" in run.stderr


def test_mismatch_messages_name_the_config_key(tiny_cfg, tmp_path):
    path = Checkpointer(_ride(tiny_cfg)[0], str(tmp_path)).save("model_final")

    def message(**extra):
        with pytest.raises(CheckpointMismatchError) as info:
            Checkpointer(_ride(tiny_cfg, **extra)[0], "").load(path, checkpointables=[])
        assert "strict=False" not in str(info.value)
        return str(info.value)

    assert "The file has 3 experts, the config builds 4: set MODEL.RIDE.NUM_EXPERTS 3" in (
        message(**{"MODEL.RIDE.NUM_EXPERTS": 4})
    )
    assert "The file has 3 experts, the config builds 2: set MODEL.RIDE.NUM_EXPERTS 3" in (
        message(**{"MODEL.RIDE.NUM_EXPERTS": 2})
    )
    assert "classifier has 10 classes, the model 12: set MODEL.NUM_CLASSES 10" in (
        message(**{"MODEL.NUM_CLASSES": 12})
    )
    assert "its stem is 0.5 times as wide as this config" in message(
        **{"MODEL.BACKBONE.WIDTH_MULT": 0.5}
    )
    assert "set MODEL.RIDE.EXPERT_WIDTHS" in message(**{"MODEL.RIDE.EXPERT_WIDTHS": [24, 64]})
    from ride_dive.modeling import build_model

    single = build_model(tiny_cfg(), [40, 30, 20, 15, 10, 8, 6, 5, 4, 4])  # a Classifier
    with pytest.raises(CheckpointMismatchError, match="builds a single-head model: use a RIDE"):
        Checkpointer(single, "").load(path, checkpointables=[])
