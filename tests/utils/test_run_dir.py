"""RunDir: every file of a run folder named once; periodic checkpoint names round trip."""

import os

import pytest

from ride_dive.checkpoint import Checkpointer
from ride_dive.utils.run_dir import RunDir, parse_periodic_checkpoint, periodic_checkpoint_name


def test_every_path_is_under_the_root_with_its_documented_name():
    root = os.path.join("some", "run")
    run = RunDir(root)
    expected = {
        "config": "config.yaml",
        "log": "log.txt",
        "metrics": "metrics.json",
        "results": "results.json",
        "final_model": "model_final.pth",
        "best_model": "model_best.pth",
        "last_checkpoint": "last_checkpoint",
        "tau_norm": "tau_norm.json",
        "router_plot": "router_tradeoff.png",
    }
    assert {name: getattr(run, name) for name in expected} == {
        name: os.path.join(root, file) for name, file in expected.items()
    }
    assert run.path("x.txt") == os.path.join(root, "x.txt")
    assert run.checkpoint("model_epoch_0003") == os.path.join(root, "model_epoch_0003.pth")
    assert run.checkpoint(periodic_checkpoint_name(7)) == os.path.join(root, "model_epoch_0007.pth")


@pytest.mark.parametrize(
    "epoch, name",
    [
        (0, "model_epoch_0000"),
        (7, "model_epoch_0007"),
        (1234, "model_epoch_1234"),
        (12345, "model_epoch_12345"),
    ],
)
def test_periodic_name_round_trips(epoch, name):
    assert periodic_checkpoint_name(epoch) == name
    assert parse_periodic_checkpoint(name + ".pth") == epoch


def test_names_sort_in_epoch_order_below_ten_thousand():
    epochs = [9, 10, 100, 2, 999]
    names = sorted(periodic_checkpoint_name(e) for e in epochs)
    assert [parse_periodic_checkpoint(n + ".pth") for n in names] == sorted(epochs)


@pytest.mark.parametrize(
    "file_name",
    [
        "model_final.pth",
        "model_best.pth",
        "last_checkpoint",
        "model_epoch_0003",  # no .pth
        "model_epoch_.pth",
        "model_epoch_00x3.pth",
        "model_epoch_0003.pth.tmp",
        "old_model_epoch_0003.pth",
        "model_epoch_-001.pth",
        "",
    ],
)
def test_other_files_are_not_periodic_checkpoints(file_name):
    assert parse_periodic_checkpoint(file_name) is None


def test_checkpointer_uses_the_same_periodic_name():
    for epoch in (0, 5, 40, 10000):
        assert Checkpointer.periodic_name(epoch) == periodic_checkpoint_name(epoch)


def test_an_output_dir_that_cannot_be_written_is_a_config_error(tmp_path, monkeypatch):
    import errno

    import pytest

    from ride_dive.config import ConfigError
    from ride_dive.utils import run_dir

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="OUTPUT_DIR .* cannot be written"):
        run_dir.ensure_writable_dir(str(blocker / "out"))

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    # Tests may run as root, for whom a chmod'ed folder stays writable: simulate EROFS.
    monkeypatch.setattr(run_dir.tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(ConfigError, match="read-only file system"):
        run_dir.ensure_writable_dir(str(tmp_path / "ro"))
    monkeypatch.undo()
    run_dir.ensure_writable_dir(str(tmp_path / "ok"))
    assert list((tmp_path / "ok").iterdir()) == []
