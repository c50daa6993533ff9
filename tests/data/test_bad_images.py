"""DATASETS.ON_BAD_IMAGE: undecodable images stop a run with one clear error, or are skipped
deterministically and counted (training: replaced by the next image of the class; evaluation:
left out)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ride_dive.config import ConfigError, get_cfg
from ride_dive.data import BadImageError, DatasetError, build_test_loader, build_train_loader
from ride_dive.data.datasets.list_file import ListFileDataset
from ride_dive.data.transforms import make_file_transforms

# Six images; index 2 (class 0) is the bad one in "bad.txt", a copy of index 3 in "same.txt".
LABELS = [0, 1, 0, 0, 1, 0]


@pytest.fixture
def folder(tmp_path):
    rng = np.random.RandomState(0)
    for i in range(6):
        pixels = rng.randint(0, 256, (10, 10, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    (tmp_path / "garbage.png").write_bytes(b"not an image")
    full = (tmp_path / "0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(full[: len(full) // 2])
    lines = [f"{i}.png {y}" for i, y in enumerate(LABELS)]
    for name, replacement in (("bad", "garbage.png"), ("cut", "cut.png"), ("same", "3.png")):
        text = lines.copy()
        text[2] = f"{replacement} 0"
        (tmp_path / f"{name}.txt").write_text("\n".join(text) + "\n")
    return tmp_path


def _dataset(folder, listing, mode="fail", train=True):
    transform = make_file_transforms(train, 8, [0.5] * 3, [0.5] * 3)
    return ListFileDataset(
        str(folder), str(folder / listing), transform, num_classes=2, on_bad_image=mode
    )


def _cfg(workers=0):
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "SOLVER.BATCH_SIZE",
            3,
            "TEST.BATCH_SIZE",
            2,
            "DATALOADER.NUM_WORKERS",
            workers,
            "INPUT.CROP_SIZE",
            8,
        ]
    )
    return cfg


def _epoch(loader, epoch=0):
    loader.set_epoch(epoch)
    return list(loader)


@pytest.mark.parametrize(
    "listing,reason",
    [
        ("bad.txt", "UnidentifiedImageError: not an image format PIL can identify"),
        ("cut.txt", "OSError: image file is truncated"),
    ],
)
def test_undecodable_image_names_file_and_line(folder, listing, reason):
    ds = _dataset(folder, listing)
    with pytest.raises(BadImageError) as info:
        ds[2]
    message = str(info.value)
    assert f"{folder / listing}:3" in message and reason in message
    assert "DATASETS.ON_BAD_IMAGE 'skip'" in message
    assert isinstance(info.value, ConfigError)  # printed by every tool as one ERROR line


def test_fail_mode_raises_in_the_main_process_from_workers(folder):
    loader = build_train_loader(_cfg(workers=2), _dataset(folder, "bad.txt"), seed=0)
    with pytest.raises(BadImageError) as info:
        _epoch(loader)
    # torch would have wrapped a worker's exception with its traceback; this one is clean
    assert "garbage.png" in str(info.value) and "Traceback" not in str(info.value)
    assert "DataLoader worker" not in str(info.value)


def test_skip_replaces_with_next_image_of_the_class_deterministically(folder):
    skipping = build_train_loader(_cfg(), _dataset(folder, "bad.txt", "skip"), seed=3)
    reference = build_train_loader(_cfg(), _dataset(folder, "same.txt"), seed=3)
    for epoch in (0, 1):
        got, expected = _epoch(skipping, epoch), _epoch(reference, epoch)
        assert [len(y) for _, y in got] == [3, 3]  # batch size and iterations unchanged
        for (x, y), (x_ref, y_ref) in zip(got, expected):
            assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert skipping.bad_images.total == 2  # the bad index is drawn once per epoch
    assert reference.bad_images.total == 0


def test_skip_with_workers_matches_skip_without(folder):
    single = _epoch(build_train_loader(_cfg(0), _dataset(folder, "bad.txt", "skip"), seed=1))
    loader = build_train_loader(_cfg(2), _dataset(folder, "bad.txt", "skip"), seed=1)
    workers = _epoch(loader)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(single, workers))
    assert loader.bad_images.total == 1


def test_skip_in_evaluation_leaves_the_image_out(folder):
    loader = build_test_loader(_cfg(), _dataset(folder, "bad.txt", "skip", train=False))
    labels = torch.cat([y for _, y in loader])
    assert labels.tolist() == [0, 1, 0, 1, 0]  # index 2 left out, nothing counted twice
    assert loader.bad_images.total == 1
    strict = build_test_loader(_cfg(), _dataset(folder, "bad.txt", train=False))
    with pytest.raises(BadImageError, match="bad.txt:3"):
        list(strict)


def test_skip_gives_up_when_nothing_is_readable(folder):
    (folder / "hopeless.txt").write_text("0.png 1\ngarbage.png 0\ncut.png 0\n")
    loader = build_train_loader(_cfg(), _dataset(folder, "hopeless.txt", "skip"), seed=0)
    with pytest.raises(DatasetError, match="no image of class 0 .* can be read"):
        _epoch(loader)
    (folder / "all_bad.txt").write_text("garbage.png 0\ncut.png 1\n")
    evaluation = build_test_loader(_cfg(), _dataset(folder, "all_bad.txt", "skip", False))
    with pytest.raises(DatasetError, match="skipped all 2 images of all_bad.txt"):
        list(evaluation)
