"""The speed suite's building blocks (tools/benchmark.py speed) at toy sizes: the configs it
measures, and that each rate is computed from the right clock readings (a scripted clock
gives exact numbers)."""

import statistics
from unittest import mock

import pytest
import torch

from benchmarks.speed import (
    PRECISIONS,
    SPEED_MODELS,
    WARMUP_STEPS,
    bare_loop,
    default_speed_models,
    paired_median_times,
    speed_cfg,
    speed_table,
    trainer_loop,
)


class ScriptedClock:
    """A clock that returns the given readings in order and fails when read once too often."""

    def __init__(self, *readings):
        self.readings = list(readings)
        self.reads = 0

    def __call__(self) -> float:
        if self.reads >= len(self.readings):
            raise AssertionError(f"clock read more than {len(self.readings)} times")
        self.reads += 1
        return self.readings[self.reads - 1]


def test_models_and_their_image_sizes(tmp_path):
    assert default_speed_models(cuda=False) == ["ResNet-32", "RIDE ResNet-32 4E"]
    assert default_speed_models(cuda=True) == list(SPEED_MODELS)
    cfg = speed_cfg(str(tmp_path), 128, True, True, 30, "RIDE ResNeXt-50 4E")
    assert (cfg.INPUT.CROP_SIZE, cfg.DATASETS.SYNTHETIC.IMAGE_SIZE) == (224, 224)
    assert cfg.MODEL.BACKBONE.NAME == "RIDEResNeXt50" and cfg.MODEL.RIDE.NUM_EXPERTS == 4
    assert cfg.SOLVER.AMP.ENABLED and cfg.MODEL.CHANNELS_LAST
    assert speed_cfg(str(tmp_path), 128, False, False, 30).INPUT.CROP_SIZE == 32


@pytest.mark.parametrize("model, size", [("RIDE ResNeXt-50 4E", 32), ("ResNet-32", None)])
def test_bare_loop_rates_are_images_over_the_timed_interval(tmp_path, model, size):
    cfg = speed_cfg(str(tmp_path), 2, True, True, 1, model, image_size=size)
    # Training timed from 10.0 to 10.5, evaluation from 20.0 to 20.25: 2 images, 1 call.
    clock = ScriptedClock(10.0, 10.5, 20.0, 20.25)
    train, evaluate = bare_loop(cfg, iters=1, clock=clock)
    assert (train, evaluate) == (2 / 0.5, 2 / 0.25)
    assert clock.reads == 4  # warm-up calls are not timed


def test_trainer_loop_times_from_the_last_warm_up_step_to_the_last_step(tmp_path):
    cfg = speed_cfg(str(tmp_path), 4, False, False, 2, "ResNet-32", image_size=16)
    iters = 2
    # One reading per step end: warm-up steps end at 0, 1, 5; the timed ones at 6 and 7.5.
    ends = [0.0, 1.0, 5.0, 6.0, 7.5]
    assert len(ends) == WARMUP_STEPS + iters
    clock = ScriptedClock(*ends)
    assert trainer_loop(cfg, iters=iters, clock=clock) == 4 * iters / (7.5 - 5.0)
    assert clock.reads == len(ends)  # the trainer stopped after the last timed step


def test_paired_median_times_alternate_and_time_each_call():
    now = [0.0]  # the scripted clock: the steps advance it
    calls = []
    # "a" takes 9 s in each warm-up call, then 1, 3 and 2 s (median 2); "b" always 0.5 s.
    a_durations = iter([9.0, 9.0, 1.0, 3.0, 2.0])

    def a():
        calls.append("a")
        now[0] += next(a_durations)

    def b():
        calls.append("b")
        now[0] += 0.5

    times = paired_median_times([a, b], iters=3, device=torch.device("cpu"), clock=lambda: now[0])
    assert times == [2.0, 0.5]
    assert times[0] / times[1] == 4.0
    # Two untimed warm-up calls each, then a b | b a | a b.
    assert calls == ["a", "a", "b", "b", "a", "b", "b", "a", "a", "b"]


def test_speed_table_has_one_row_per_model_and_precision_with_ratios_of_medians():
    models = ["ResNet-32", "RIDE ResNet-32 4E"]
    bare, trainer, evals, peak = {}, {}, {}, {}
    for m, model in enumerate(models):
        for p, (name, _, _) in enumerate(PRECISIONS):
            base = 100.0 * (m + 1) * (p + 1)
            bare[model, name] = [base, 3 * base, 2 * base]  # median 2 * base
            trainer[model, name] = [base, base]
            evals[model, name] = [4 * base]
            peak[model, name] = [10.0, 30.0] if m == 0 else []
    lines = speed_table(models, bare, trainer, evals, peak).splitlines()
    assert lines[0].startswith("| model | image | precision | bare train img/s | vs fp32 |")
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[2:]]
    assert [(r[0], r[2]) for r in rows] == [(m, p) for m in models for p, _, _ in PRECISIONS]
    for row in rows:
        model, name = row[0], row[2]
        b = statistics.median(bare[model, name])
        fp32 = statistics.median(bare[model, "fp32"])
        t = statistics.median(trainer[model, name])
        assert row[1] == "32x32"
        assert row[3] == f"{b:.0f}" and row[4] == f"{b / fp32:.2f}x"
        assert row[5] == f"{t:.0f}" and row[6] == f"{t / b:.2f}"
        assert row[7] == f"{evals[model, name][0]:.0f}"
        assert row[8] == ("30" if model == "ResNet-32" else "–")
    assert rows[1][4] == "2.00x" and rows[2][6] == "0.50"  # bf16 twice fp32; trainer 1/2


def test_where_bf16_would_be_emulated_the_default_row_is_fp32_channels_last():
    from benchmarks.speed import FP32_CHANNELS_LAST, default_precision, speed_variants

    cpu = torch.device("cpu")
    no_bf16 = (False, "neither AMX nor AVX512-BF16")
    with mock.patch("ride_dive.utils.env.cpu_fast_bf16", return_value=no_bf16):
        assert default_precision(cpu) == FP32_CHANNELS_LAST == ("fp32 + channels_last", False, True)
        assert speed_variants(False, cpu) == (PRECISIONS[0], FP32_CHANNELS_LAST)
        assert speed_variants(True, cpu)[-1] == ("fp32 + channels_last + compile", False, True)
    with mock.patch("ride_dive.utils.env.cpu_fast_bf16", return_value=(True, "AVX512-BF16")):
        assert default_precision(cpu) == PRECISIONS[-1] == ("bf16 + channels_last", True, True)


def test_the_compiled_row_and_the_warm_up_column():
    from benchmarks.speed import compiled_row, speed_variants

    compiled_bf16 = compiled_row(PRECISIONS[-1])
    assert compiled_bf16 == ("bf16 + channels_last + compile", True, True)
    bf16_cpu = (True, "AMX")
    with mock.patch("ride_dive.utils.env.cpu_fast_bf16", return_value=bf16_cpu):
        assert speed_variants(False) == PRECISIONS
        assert speed_variants(True) == PRECISIONS + (compiled_bf16,)
        rows = speed_variants(True)
    bare = {("ResNet-32", n): [100.0, 300.0, 200.0] for n, _, _ in rows}
    bare["ResNet-32", compiled_bf16[0]] = [400.0]
    warm = {("ResNet-32", n): [1.0] for n, _, _ in rows}
    warm["ResNet-32", compiled_bf16[0]] = [90.0, 110.0, 100.0]
    table = speed_table(["ResNet-32"], bare, bare, bare, {}, rows, warm).splitlines()
    assert table[0].endswith("| warm-up (s) |") and len(table) == 2 + len(rows)
    compiled = [c.strip() for c in table[-1].strip("|").split("|")]
    # 400 over the fp32 median 200; the warm-up median over rounds.
    assert compiled[2:5] == [compiled_bf16[0], "400", "2.00x"] and compiled[-1] == "100.0"
