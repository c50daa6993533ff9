"""The input side of image-file datasets: decode + augmentation images/s in one worker.

``tools/benchmark.py decode`` writes synthetic JPEGs of ImageNet's typical size, then runs
each pipeline over them in one thread (what one DataLoader worker does) and prints images/s
per worker, and how many workers a consumer of ``--target`` images/s needs:

- ``PIL + transforms`` is what ``ListFileDataset`` runs today: ``PIL.Image.open`` +
  ``convert("RGB")``, then RandomResizedCrop(224), flip, ToTensor, Normalize on the PIL image;
- ``decode_jpeg + transforms.v2`` reads the bytes with ``torchvision.io.decode_jpeg`` and
  applies the same steps with ``torchvision.transforms.v2`` on the uint8 tensor.
"""

import math
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np
import torch

__all__ = ["PIPELINES", "decode_table", "images_per_second", "write_jpegs"]


def write_jpegs(folder: str, count: int, size=(375, 500), seed: int = 0) -> List[str]:
    """``count`` JPEGs (quality 90) of smooth colour fields with noise, like photographs
    in their compressed size; returns their paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    os.makedirs(folder, exist_ok=True)
    paths = []
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(count):
        base = np.stack(
            [np.sin(xx / rng.uniform(20, 80) + c) * 90 + yy / h * 80 + 40 for c in range(3)], -1
        )
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"{i:05d}.jpg")
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def _pil_pipeline(crop: int, mean, std) -> Callable[[str], torch.Tensor]:
    from PIL import Image

    from ride_dive.data.transforms import make_file_transforms

    transform = make_file_transforms(True, crop, mean, std)

    def load(path: str) -> torch.Tensor:
        with open(path, "rb") as f:
            return transform(Image.open(f).convert("RGB"))

    return load


def _tensor_pipeline(crop: int, mean, std) -> Callable[[str], torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.RandomResizedCrop(crop, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )

    def load(path: str) -> torch.Tensor:
        return transform(decode_jpeg(read_file(path), mode=ImageReadMode.RGB))

    return load


# name -> builder(crop, mean, std) of a function from a file path to the training tensor.
PIPELINES: Dict[str, Callable] = {
    "PIL + transforms": _pil_pipeline,
    "decode_jpeg + transforms.v2": _tensor_pipeline,
}


def images_per_second(
    load: Callable[[str], torch.Tensor], paths: List[str], clock=time.perf_counter
) -> float:
    """Images/s of ``load`` over ``paths`` after one untimed call (the clock is read twice)."""
    load(paths[0])
    start = clock()
    for path in paths:
        load(path)
    return len(paths) / (clock() - start)


def decode_table(images: int, rounds: int, target: int) -> str:
    """The Markdown table of ``tools/benchmark.py decode``: each pipeline over ``images``
    JPEGs in one thread, median images/s of ``rounds`` interleaved rounds, and the workers a
    consumer of ``target`` images/s needs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one DataLoader worker
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_jpegs(tmp, images)
            mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            rates = {name: [] for name in PIPELINES}
            for _ in range(rounds):  # interleaved: background load hits both
                for name, build in PIPELINES.items():
                    torch.manual_seed(0)
                    rates[name].append(images_per_second(build(224, mean, std), paths))
    finally:
        torch.set_num_threads(threads)
    lines = [
        f"\n{images} JPEGs of 500x375 (quality 90), RandomResizedCrop(224) + flip + normalize, "
        f"one thread; median of {rounds} rounds\n",
        f"| pipeline | images/s per worker | workers for {target} img/s |",
        "|---|---|---|",
    ]
    for name, values in rates.items():
        rate = statistics.median(values)
        lines.append(f"| {name} | {rate:.0f} | {math.ceil(target / rate)} |")
    return "\n".join(lines)
