"""The console writer's line (losses, lr, speed, the mean over RIDE's experts of each loss
term) and its ETA, also across a pipeline's stages."""

import math

import pytest

from ride_dive.utils.events import (
    ConsoleWriter,
    EventStorage,
    IterationRate,
    PipelineProgress,
    format_eta,
    format_rough_duration,
    get_pipeline_progress,
    set_pipeline_progress,
)

# --- ConsoleWriter ------------------------------------------------------------------------


class FakeClock:
    """Seconds set by the test: ``clock.now = ...`` before each write."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


def _write_at(writer, storage, clock, it, now):
    storage.iter, clock.now = it, now
    writer.write(storage)


def test_console_line_with_eta_losses_lr_and_speed(log_lines):
    storage = EventStorage(start_iter=0)
    storage.epoch = 1
    storage.put_scalars(loss_cls=1.23456, loss_div=-0.5, total_loss=0.73456)
    storage.put_scalar("lr", 0.012345678, smoothing=False)
    storage.put_scalar("images_per_sec", 127.6)
    clock = FakeClock()
    writer = ConsoleWriter(max_iter=100, clock=clock)
    _write_at(writer, storage, clock, 9, 100.0)  # 10 iterations done: measuring starts
    _write_at(writer, storage, clock, 19, 105.0)  # 10 more in 5 s: 0.5 s per iteration
    # ETA: 0.5 s x the 80 iterations left after 20 of 100 = 40 s.
    assert log_lines == [
        "eta: ...  epoch: 1  iter: 10/100  loss: 0.735 (cls 1.23, div -0.5)  lr: 0.0123  "
        "img/s: 128",
        "eta: 0:00:40  epoch: 1  iter: 20/100  loss: 0.735 (cls 1.23, div -0.5)  lr: 0.0123  "
        "img/s: 128",
    ]


def test_console_line_without_time_lr_or_speed(log_lines):
    storage = EventStorage(start_iter=99)
    storage.put_scalar("loss_cls", 2.0)
    writer = ConsoleWriter(max_iter=100)
    writer.write(storage)
    writer.close()
    # No total_loss scalar: the total shown is the sum of the terms; one term: no parts.
    assert log_lines == ["eta: ...  epoch: 0  iter: 100/100  loss: 2"]


def test_console_total_is_a_loss_scalar_or_the_sum_of_the_terms(log_lines):
    for scalars in ({"loss": 5.0}, {"loss": 5.0, "loss_a": 1.0, "loss_b": 0.5}):
        storage = EventStorage()
        storage.put_scalars(**scalars)  # a "loss" scalar is the total
        ConsoleWriter(max_iter=10).write(storage)
    storage = EventStorage()
    storage.put_scalars(loss_a=1.0, loss_b=0.5, total_loss=7.0)  # total_loss: the total
    ConsoleWriter(max_iter=10).write(storage)
    storage = EventStorage()
    storage.put_scalars(loss_a=1.0, loss_b=0.5)  # neither: the sum of the terms
    ConsoleWriter(max_iter=10).write(storage)
    assert [line.split("  ", 3)[3] for line in log_lines] == [
        "loss: 5",
        "loss: 5 (a 1, b 0.5)",
        "loss: 7 (a 1, b 0.5)",
        "loss: 1.5 (a 1, b 0.5)",
    ]


def _ride_storage(num_experts=6, it=1234):
    """What the trainer records for a RIDE step: total_loss and one base and one diversity
    term per expert, plus lr, speed and the step/data times."""
    storage = EventStorage()
    storage.iter, storage.epoch = it, 13
    base = {f"loss_base_e{i}": 1.0 + 0.1 * i for i in range(num_experts)}
    div = {f"loss_div_e{i}": -0.0123456 * (i + 1) for i in range(num_experts)}
    total = sum(base.values()) + sum(div.values())
    storage.put_scalars(total_loss=total, **base, **div, time=0.31, data_time=0.01)
    storage.put_scalar("lr", 0.0987654321, smoothing=False)
    storage.put_scalar("images_per_sec", 412.7)
    return storage, base, div, total


def test_console_shows_the_mean_over_experts_of_each_term_kind(log_lines):
    storage, base, div, total = _ride_storage()
    ConsoleWriter(max_iter=18800).write(storage)
    note, line = log_lines
    assert note == (
        "Console losses: loss = the total; base = mean of the 6 loss_base_e*, div = mean of "
        "the 6 loss_div_e* (over the experts); metrics.json and TensorBoard have every term."
    )
    mean_base = sum(base.values()) / 6
    mean_div = sum(div.values()) / 6
    assert mean_base == pytest.approx(1.25) and mean_div == pytest.approx(-0.0432096)
    assert f"  loss: {total:.3g} (base 1.25, div -0.0432)  lr: 0.0988  img/s: 413" in line
    assert "_e0" not in line and "_e5" not in line
    writer = ConsoleWriter(max_iter=18800)  # a new writer (stage) notes it again, once
    writer.write(storage)
    writer.write(storage)
    assert sum(x.startswith("Console losses:") for x in log_lines) == 2


def test_console_groups_dive_terms_and_leaves_single_terms_alone(log_lines):
    storage = EventStorage()
    storage.put_scalars(loss_cls_e0=1.0, loss_cls_e1=3.0, loss_distill_e0=0.5)
    storage.put_scalars(loss_distill_e1=1.5, loss_router=0.25, loss_e0=7.0)
    ConsoleWriter(max_iter=10).write(storage)
    # loss_e0 is no kind's expert term (a kind named "loss" would read as the total).
    assert log_lines[-1].endswith("loss: 13.2 (cls 2, distill 1, e0 7, router 0.25)")
    assert "cls = mean of the 2 loss_cls_e*, distill = mean of the 2" in log_lines[0]


def test_a_six_expert_ride_line_fits_a_terminal(log_lines):
    """A 6-expert RIDE teacher of a pipeline (200 epochs of 94 iterations, epoch 133), with
    the pipeline's remainder: under 120 characters."""
    storage, *_ = _ride_storage(it=12499)
    storage.epoch = 133
    storage.put_scalar("images_per_sec", 41270.0)
    clock = FakeClock()
    set_pipeline_progress(PipelineProgress(1, 3, "teacher", later_iters=37600))
    try:
        writer = ConsoleWriter(max_iter=18800, clock=clock)
        _write_at(writer, storage, clock, 12399, 0.0)
        _write_at(writer, storage, clock, 12499, 30.0)
    finally:
        set_pipeline_progress(None)
    line = log_lines[-1]
    assert line == (
        "eta: 0:31:30 (all ~3.7 h)  epoch: 133  iter: 12500/18800  "
        "loss: 7.24 (base 1.25, div -0.0432)  lr: 0.0988  img/s: 41270"
    )
    assert len(line) < 120, (len(line), line)


# --- ETA ----------------------------------------------------------------------------------


def test_eta_skips_the_slow_first_iterations_and_then_averages(log_lines):
    """Iterations 0-9 take 60 s (warm-up); then 1 s each: the ETA never sees the 60 s."""
    storage = EventStorage()
    clock = FakeClock()
    writer = ConsoleWriter(max_iter=1000, clock=clock)
    _write_at(writer, storage, clock, 4, 50.0)  # 5 iterations done: still warm-up
    _write_at(writer, storage, clock, 9, 60.0)  # 10 done: measuring starts here
    _write_at(writer, storage, clock, 12, 63.0)  # 3 iterations measured: not enough
    _write_at(writer, storage, clock, 19, 70.0)  # 10 measured in 10 s
    _write_at(writer, storage, clock, 29, 82.0)  # 20 measured in 22 s: 1.1 s each
    etas = [line.split("  ")[0] for line in log_lines]
    assert etas == ["eta: ...", "eta: ...", "eta: ...", "eta: 0:16:20", "eta: 0:17:47"]


def test_eta_of_a_resumed_session_counts_its_warm_up_from_its_start(log_lines):
    storage = EventStorage(start_iter=500)
    clock = FakeClock()
    writer = ConsoleWriter(max_iter=1000, clock=clock)
    _write_at(writer, storage, clock, 504, 10.0)  # 5 iterations into the session
    _write_at(writer, storage, clock, 509, 20.0)  # 10: measuring starts
    _write_at(writer, storage, clock, 519, 25.0)
    assert [line.split("  ")[0] for line in log_lines] == ["eta: ...", "eta: ...", "eta: 0:04:00"]


def test_eta_is_zero_at_the_last_iteration(log_lines):
    storage = EventStorage()
    clock = FakeClock()
    writer = ConsoleWriter(max_iter=100, clock=clock, rate=IterationRate(0, 1))
    _write_at(writer, storage, clock, 0, 0.0)
    _write_at(writer, storage, clock, 120, 3.0)  # past max_iter: never a negative ETA
    assert log_lines[-1].startswith("eta: 0:00:00  ")


def test_an_absurd_run_length_gives_an_eta_not_an_overflow(log_lines):
    storage = EventStorage()
    clock = FakeClock()
    max_iter = 99999999999999999999999 * 50  # SOLVER.MAX_EPOCHS 99999999999999999999999
    writer = ConsoleWriter(max_iter=max_iter, clock=clock, rate=IterationRate(0, 1))
    _write_at(writer, storage, clock, 0, 0.0)
    _write_at(writer, storage, clock, 49, 2.0)
    assert log_lines[-1].startswith(f"eta: > 999 days  epoch: 0  iter: 50/{max_iter}")
    writer = ConsoleWriter(max_iter=10**400, clock=clock, rate=IterationRate(0, 1))
    _write_at(writer, storage, clock, 0, 0.0)
    _write_at(writer, storage, clock, 49, 2.0)  # 10**400 iterations overflow a float
    assert log_lines[-1].startswith("eta: > 999 days  ")


@pytest.mark.parametrize(
    "seconds,text",
    [
        (0.0, "0:00:00"),
        (-5.0, "0:00:00"),
        (45.9, "0:00:45"),
        (3 * 86400 + 61, "3 days, 0:01:01"),
        (999 * 86400, "999 days, 0:00:00"),
        (999 * 86400 + 1, "> 999 days"),
        (1e300, "> 999 days"),
        (math.inf, "> 999 days"),
        (math.nan, "unknown"),
    ],
)
def test_format_eta_never_raises(seconds, text):
    assert format_eta(seconds) == text


@pytest.mark.parametrize(
    "seconds,text",
    [
        (-1.0, "0 s"),
        (4.4, "4 s"),
        (89.0, "89 s"),
        (90.0, "2 min"),
        (151.0, "3 min"),
        (89 * 60, "89 min"),
        (90 * 60, "1.5 h"),
        (47.9 * 3600, "47.9 h"),
        (3.25 * 86400, "3.2 days"),
        (1e300, "> 999 days"),
        (math.inf, "> 999 days"),
        (math.nan, "unknown"),
    ],
)
def test_format_rough_duration(seconds, text):
    assert format_rough_duration(seconds) == text


def test_iteration_rate_needs_warm_up_and_enough_iterations():
    rate = IterationRate(warmup_iters=10, min_iters=5)
    rate.observe(5.0, 9, 0)
    assert rate.seconds_per_iter is None
    rate.observe(6.0, 10, 0)  # the anchor
    rate.observe(7.0, 14, 0)
    assert rate.seconds_per_iter is None  # 4 iterations measured
    rate.observe(9.0, 20, 0)
    assert rate.seconds_per_iter == pytest.approx(0.3)


def test_console_eta_adds_the_pipelines_later_stages(log_lines):
    storage = EventStorage()
    clock = FakeClock()
    writer = ConsoleWriter(max_iter=100, clock=clock)
    set_pipeline_progress(PipelineProgress(1, 3, "teacher", later_iters=200))
    try:
        assert get_pipeline_progress().name == "teacher"
        _write_at(writer, storage, clock, 9, 0.0)
        _write_at(writer, storage, clock, 19, 5.0)
        set_pipeline_progress(PipelineProgress(3, 3, "router", later_iters=0))
        _write_at(writer, storage, clock, 29, 10.0)
    finally:
        set_pipeline_progress(None)
    _write_at(writer, storage, clock, 39, 15.0)
    # 0.5 s per iteration: 80 left here (40 s) + 200 later (100 s) = 140 s.
    assert log_lines[1].startswith("eta: 0:00:40 (all ~2 min)  epoch: 0  iter: 20/100")
    assert log_lines[2].startswith("eta: 0:00:35  epoch")  # the last stage: nothing to add
    assert log_lines[3].startswith("eta: 0:00:30  epoch")
    assert get_pipeline_progress() is None
