"""Atomic writes, weights-only loads, refusal of corrupt and malicious files, RNG state."""

import os
import pickle
import random
import sys
import types

import numpy as np
import pytest
import torch

from ride_dive.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    capture_rng_state,
    restore_rng_state,
    safe_torch_load,
    to_weights_only_safe,
)
from ride_dive.utils.pickle_scan import pickle_globals


class _Evil:
    """Unpickling this runs ``os.system`` and creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_numpy_values_become_loadable(tmp_path):
    state = {
        "perm": np.array([3, 1, 2], dtype=np.uint32),
        "pos": np.int64(5),
        "nested": [(np.float32(0.5), "a")],
    }
    safe = to_weights_only_safe(state)
    assert safe["perm"].dtype == torch.int64 and safe["perm"].tolist() == [3, 1, 2]
    assert type(safe["pos"]) is int and safe["nested"] == [(0.5, "a")]
    atomic_torch_save(safe, str(tmp_path / "s.pth"))
    assert torch.load(tmp_path / "s.pth", weights_only=True)["pos"] == 5


def test_unsafe_value_is_named():
    with pytest.raises(TypeError, match=r"checkpoint\['sampler'\]\['gen'\]"):
        to_weights_only_safe({"sampler": {"gen": np.random.default_rng(0)}})


def test_state_dict_kept_as_is():
    sd = torch.nn.BatchNorm1d(2).state_dict()
    assert to_weights_only_safe(sd) is sd  # keeps _metadata for BN upgrades


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = str(tmp_path / "model.pth")
    atomic_torch_save({"w": torch.ones(2)}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        atomic_torch_save({"w": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.pth"]
    assert torch.equal(safe_torch_load(path)["w"], torch.ones(2))


def test_truncated_file_raises_checkpoint_error(tmp_path):
    path = str(tmp_path / "model.pth")
    atomic_torch_save({"w": torch.randn(100)}, path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CheckpointError, match="model.pth") as info:
        safe_torch_load(path)
    assert "truncated or corrupt" in str(info.value)
    assert "nothing in the file was executed" in str(info.value)
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_pickle_is_refused_without_running(tmp_path, writer):
    marker = tmp_path / "pwned"
    payload = {"model": _Evil(str(marker))}
    # The payload is live: plain unpickling does create the marker.
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "evil.pth"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(CheckpointError, match="evil.pth") as info:
        safe_torch_load(str(path))
    assert not marker.exists()
    # The blocked global is named; torch's advice to retry unsafely is not passed on.
    assert "names posix.system" in str(info.value) and "tampered" in str(info.value)
    assert "set to `False`" not in str(info.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        safe_torch_load(str(tmp_path / "nope.pth"))


def _draw():
    return (
        random.random(),
        random.gauss(0, 1),
        np.random.rand(3).tolist(),
        np.random.randn(),
        torch.rand(3).tolist(),
    )


def test_rng_round_trip_through_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    np.random.randn()  # and in NumPy's
    state = capture_rng_state()
    expected = _draw()
    path = str(tmp_path / "rng.pth")
    atomic_torch_save(state, path)
    _draw()  # move every generator on
    restore_rng_state(torch.load(path, weights_only=True))
    assert _draw() == expected


def test_partial_state_leaves_others_alone():
    torch.manual_seed(0)
    state = {"torch": capture_rng_state()["torch"]}
    expected_torch = torch.rand(2)
    np.random.seed(5)
    expected_np = np.random.rand()
    np.random.seed(5)
    restore_rng_state(state)
    assert torch.equal(torch.rand(2), expected_torch)
    assert np.random.rand() == expected_np


_ZIP_WRITER_FULL = (
    "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
    "data/0: file write failed"
)


def test_zip_writer_failure_is_an_oserror_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "model.pth")
    atomic_torch_save({"w": torch.ones(2)}, path)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise RuntimeError(_ZIP_WRITER_FULL)  # what torch raises, instead of an OSError

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="inline_container"):
        atomic_torch_save({"w": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.pth"]
    assert torch.equal(safe_torch_load(path)["w"], torch.ones(2))


class _Settings:
    """A foreign framework's config object: refused by weights_only, but harmless."""


def _foreign_module(monkeypatch):
    module = types.ModuleType("framework_x")
    _Settings.__module__, _Settings.__qualname__ = "framework_x", "Settings"
    module.Settings = _Settings
    monkeypatch.setitem(sys.modules, "framework_x", module)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")
@pytest.mark.parametrize("writer", ["zip", "legacy", "pickle-4"])
def test_refusal_names_the_blocked_global_without_torchs_unsafe_advice(
    tmp_path, monkeypatch, writer
):
    _foreign_module(monkeypatch)
    payload = {"state_dict": {"w": torch.ones(1)}, "config": _Settings()}
    path = tmp_path / "foreign.pth"
    if writer == "zip":
        torch.save(payload, path)
    elif writer == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:  # protocol 4 names globals with STACK_GLOBAL, its strings from the memo
        path.write_bytes(pickle.dumps({"config": _Settings(), "more": _Settings()}, protocol=4))
    monkeypatch.delitem(sys.modules, "framework_x")
    assert "framework_x.Settings" in pickle_globals(str(path))
    with pytest.raises(CheckpointError) as info:
        safe_torch_load(str(path))
    message = str(info.value)
    assert "it pickles objects of framework_x.Settings" in message
    assert "nothing in the file was executed" in message
    assert "tools/convert_checkpoint.py" in message
    for advice in ("weights_only=False", "`weights_only` set to", "likely succeed", "safe_globals"):
        assert advice not in message


def test_damaged_bytes_are_not_read_as_global_names(tmp_path):
    path = tmp_path / "text.pth"
    path.write_bytes(b"cheap\ntrick\nnot a pickle at all")  # starts like a GLOBAL opcode
    assert pickle_globals(str(path)) == []
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        safe_torch_load(str(path))
