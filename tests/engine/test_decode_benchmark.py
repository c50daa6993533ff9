"""benchmarks/decode.py: the JPEGs it writes, what each pipeline returns, and its rate."""

import torch
from PIL import Image

from benchmarks.decode import PIPELINES, images_per_second, write_jpegs
from tests.engine.test_speed import ScriptedClock


def test_both_pipelines_give_the_training_tensor_of_the_written_jpegs(tmp_path):
    paths = write_jpegs(str(tmp_path), 2, size=(60, 80))
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG" and image.size == (80, 60)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    for build in PIPELINES.values():
        out = build(32, mean, std)(paths[1])
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32
        # Normalised from [0, 1]: within [(0 - 0.5) / 0.25, (1 - 0.5) / 0.25].
        assert out.min() >= -2.0 - 1e-6 and out.max() <= 2.0 + 1e-6


def test_the_rate_is_images_over_the_timed_interval():
    calls = []
    rate = images_per_second(calls.append, ["a", "b", "c", "d"], ScriptedClock(1.0, 3.0))
    assert rate == 4 / 2.0 and calls == ["a", "a", "b", "c", "d"]  # one untimed warm-up
