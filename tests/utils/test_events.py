"""EventStorage (latest values, window medians) and what the file writers (metrics.json,
TensorBoard) write from it."""

import json
import math
import os

import pytest

from ride_dive.utils.events import (
    ConsoleWriter,
    EventStorage,
    JSONWriter,
    TensorboardWriter,
    default_writers,
    get_event_storage,
    set_event_storage,
)


def _storage_with_five_iterations():
    """loss 5, 1, 4, 2, 3 at iterations 0-4 (median 3); lr 0.1 unsmoothed at iteration 4;
    data_time only at iteration 3."""
    storage = EventStorage()
    for it, loss in enumerate([5.0, 1.0, 4.0, 2.0, 3.0]):
        storage.iter = it
        storage.put_scalar("loss", loss)
        if it == 3:
            storage.put_scalar("data_time", 0.5)
    storage.put_scalar("lr", 0.1, smoothing=False)
    return storage


# --- EventStorage -------------------------------------------------------------------------


def test_latest_is_the_last_value_and_its_iteration():
    storage = _storage_with_five_iterations()
    assert storage.latest() == {"loss": (3.0, 4), "data_time": (0.5, 3), "lr": (0.1, 4)}


def test_latest_smoothed_is_the_window_median_unless_recorded_unsmoothed():
    storage = _storage_with_five_iterations()
    storage.put_scalar("lr", 0.2, smoothing=False)  # lr history 0.1, 0.2: still the latest
    assert storage.latest_smoothed() == {"loss": (3.0, 4), "data_time": (0.5, 3), "lr": (0.2, 4)}


def test_median_of_an_even_window_is_the_upper_middle_value():
    storage = EventStorage()
    storage.put_scalars(x=1.0)
    for v in (4.0, 2.0, 3.0):
        storage.put_scalar("x", v)
    assert storage.median("x") == 3.0  # sorted 1, 2, 3, 4 -> element 2


def test_the_window_forgets_old_values():
    storage = EventStorage(window=3)
    for v in (100.0, 100.0, 1.0, 2.0, 3.0):
        storage.put_scalar("x", v)
    assert storage.median("x") == 2.0
    assert storage.latest_smoothed()["x"] == (2.0, 0)


def test_median_of_an_unknown_scalar_is_nan():
    assert math.isnan(EventStorage().median("never"))


def test_start_iter_and_put_scalars():
    storage = EventStorage(start_iter=40)
    storage.put_scalars(loss_a=1, loss_b=2.5, smoothing=False)
    assert storage.latest() == {"loss_a": (1.0, 40), "loss_b": (2.5, 40)}
    assert type(storage.latest()["loss_a"][0]) is float


def test_get_event_storage_only_inside_a_run():
    with pytest.raises(RuntimeError, match="outside of a training run"):
        get_event_storage()
    storage = EventStorage()
    set_event_storage(storage)
    try:
        assert get_event_storage() is storage
    finally:
        set_event_storage(None)
    with pytest.raises(RuntimeError):
        get_event_storage()


# --- JSONWriter ---------------------------------------------------------------------------


def _read_json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_json_writer_writes_one_line_per_iteration_of_new_scalars(tmp_path):
    path = str(tmp_path / "metrics.json")
    storage = _storage_with_five_iterations()
    storage.epoch = 2
    writer = JSONWriter(path)
    writer.write(storage)
    assert _read_json_lines(path) == [
        {"iteration": 3, "epoch": 2, "data_time": 0.5},
        {"iteration": 4, "epoch": 2, "loss": 3.0, "lr": 0.1},
    ]
    writer.write(storage)  # nothing new: nothing written
    assert len(_read_json_lines(path)) == 2
    storage.iter = 5
    storage.put_scalar("loss", 10.0)  # window 5, 1, 4, 2, 3, 10 -> median 4
    storage.epoch = 3
    writer.write(storage)
    writer.close()
    assert _read_json_lines(path)[2:] == [{"iteration": 5, "epoch": 3, "loss": 4.0}]


def test_json_writer_appends_to_an_existing_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"iteration": 0, "epoch": 0, "loss": 9.0}\n')
    storage = EventStorage(start_iter=7)
    storage.put_scalar("loss", 1.5)
    writer = JSONWriter(str(path))
    writer.write(storage)
    writer.close()
    assert _read_json_lines(path) == [
        {"iteration": 0, "epoch": 0, "loss": 9.0},
        {"iteration": 7, "epoch": 0, "loss": 1.5},
    ]


# --- TensorboardWriter --------------------------------------------------------------------


def _read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(log_dir)
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_writer_writes_the_smoothed_scalars_once(tmp_path):
    log_dir = str(tmp_path / "tb")
    storage = _storage_with_five_iterations()
    writer = TensorboardWriter(log_dir)
    writer.write(storage)
    writer.write(storage)  # nothing new: no duplicate points
    storage.iter = 5
    storage.put_scalar("loss", 10.0)
    writer.write(storage)
    writer.close()
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(log_dir))
    scalars = _read_scalars(log_dir)
    assert set(scalars) == {"loss", "lr", "data_time"}
    assert scalars["loss"] == [(4, 3.0), (5, 4.0)]
    assert scalars["data_time"] == [(3, 0.5)]
    assert [step for step, _ in scalars["lr"]] == [4]
    assert scalars["lr"][0][1] == pytest.approx(0.1, rel=1e-6)  # stored as float32


# --- default_writers and lazy files -------------------------------------------------------


def test_default_writers(tmp_path):
    writers = default_writers(str(tmp_path), max_iter=10)
    assert [type(w) for w in writers] == [ConsoleWriter, JSONWriter, TensorboardWriter]
    for w in writers:
        w.close()
    (tmp_path / "no_tb").mkdir()
    writers = default_writers(str(tmp_path / "no_tb"), max_iter=10, tensorboard=False)
    assert [type(w) for w in writers] == [ConsoleWriter, JSONWriter]
    storage = EventStorage()
    storage.put_scalar("loss", 1.0)
    for w in writers:
        w.write(storage)
        w.close()
    assert os.path.isfile(tmp_path / "no_tb" / "metrics.json")
    assert not os.path.exists(tmp_path / "no_tb" / "tensorboard")


def test_file_writers_create_nothing_before_their_first_write(tmp_path):
    """A run refused before training (a --resume with no readable checkpoint) built its
    writers: they must leave no empty metrics.json or TensorBoard event file behind."""
    writers = default_writers(str(tmp_path), max_iter=10)
    for w in writers:
        w.close()
    assert os.listdir(tmp_path) == []

    writers = default_writers(str(tmp_path), max_iter=10)
    storage = EventStorage()
    storage.put_scalar("loss", 1.0)
    for w in writers:
        w.write(storage)
    assert _read_json_lines(tmp_path / "metrics.json") == [
        {"iteration": 0, "epoch": 0, "loss": 1.0}
    ]
    for w in writers:
        w.close()
    events = os.listdir(tmp_path / "tensorboard")
    assert len(events) == 1 and events[0].startswith("events.out.tfevents")
    assert _read_scalars(str(tmp_path / "tensorboard")) == {"loss": [(0, 1.0)]}
