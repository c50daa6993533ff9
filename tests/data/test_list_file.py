"""List-file datasets: parsing, errors with file:line, lazy image errors, registered sets."""

import numpy as np
import pytest
import torch
from PIL import Image

from ride_dive.config import get_cfg
from ride_dive.data import DatasetError, build_datasets
from ride_dive.data.datasets.list_file import INaturalist2018, ListFileDataset


def _image(path, value, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 5), value, dtype=np.uint8), mode=mode).save(path)


def test_parses_lines_and_loads_rgb(tmp_path):
    _image(tmp_path / "train" / "a b.png", 10)
    _image(tmp_path / "train" / "c.png", 200)
    listing = tmp_path / "list.txt"
    listing.write_text("train/a b.png 1\n\n   \ntrain/c.png   2  \n")
    ds = ListFileDataset(str(tmp_path), str(listing), transform=None, num_classes=3)
    assert len(ds) == 2 and torch.equal(ds.labels, torch.tensor([1, 2]))
    image, label = ds[1]
    assert image.mode == "RGB" and image.size == (5, 6) and label == 2
    assert np.asarray(image)[0, 0].tolist() == [200, 200, 200]
    as_array = ListFileDataset(str(tmp_path), str(listing), np.asarray, 3)
    array, label = as_array[0]
    assert array.shape == (6, 5, 3) and array[0, 0, 0] == 10 and label == 1


@pytest.mark.parametrize(
    "line,problem",
    [
        ("justapath", "expected 'relative/path label'"),
        ("a.png one", "label 'one' is not an integer"),
        ("a.png 5", r"label 5 is out of range \[0, 5\)"),
        ("a.png -1", r"label -1 is out of range"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, problem):
    listing = tmp_path / "list.txt"
    listing.write_text(f"x.png 0\n\n{line}\n")
    with pytest.raises(DatasetError, match=f"{listing}:3: {problem}"):
        ListFileDataset(str(tmp_path), str(listing), num_classes=5)


def test_missing_image_is_reported_when_loaded(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("gone/x.png 0\n")
    ds = ListFileDataset(str(tmp_path), str(listing), num_classes=2, check_files=False)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/gone/x.png.*{listing}:1"):
        ds[0]
    with pytest.raises(FileNotFoundError, match="List file not found"):
        ListFileDataset(str(tmp_path), str(tmp_path / "nope.txt"))


def test_imagenet_lt_from_config_with_override_lists(tmp_path):
    for i in range(3):
        _image(tmp_path / "img" / f"{i}.jpg", 50 * i, mode="L")
    (tmp_path / "my_train.txt").write_text("img/0.jpg 0\nimg/1.jpg 999\nimg/2.jpg 0\n")
    (tmp_path / "ImageNet_LT_val.txt").write_text("img/1.jpg 3\n")
    (tmp_path / "ImageNet_LT_test.txt").write_text("img/2.jpg 7\n")
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "DATASETS.NAME",
            "ImageNetLT",
            "DATASETS.ROOT",
            str(tmp_path),
            "DATASETS.TRAIN_LIST",
            "my_train.txt",
            "INPUT.CROP_SIZE",
            4,
            "INPUT.TEST_RESIZE",
            5,
            "INPUT.COLOR_JITTER",
            0.4,
        ]
    )
    splits = build_datasets(cfg)
    assert splits.num_classes == 1000 and len(splits.class_counts) == 1000
    assert splits.class_counts[0] == 2 and splits.class_counts[999] == 1
    image, label = splits.train[1]
    assert label == 999 and image.shape == (3, 4, 4) and image.dtype == torch.float32
    image, label = splits.test[0]
    assert label == 7 and image.shape == (3, 4, 4)
    expected = (100 / 255 - 0.485) / 0.229  # gray 100 normalised with the ImageNet stats
    assert image[0].flatten().tolist() == pytest.approx([expected] * 16, abs=1e-5)
    cfg.merge_from_list(["DATASETS.NAME", "PlacesLT"])
    with pytest.raises(FileNotFoundError, match="Places_LT_val.txt"):
        build_datasets(cfg)


def test_inaturalist_uses_official_val_as_test(tmp_path):
    for name in ("a", "b", "c"):
        _image(tmp_path / f"{name}.jpg", 0)
    (tmp_path / "iNaturalist18_train.txt").write_text("a.jpg 8141\nb.jpg 0\n")
    (tmp_path / "iNaturalist18_val.txt").write_text("c.jpg 5\n")
    splits = INaturalist2018(root=str(tmp_path))
    assert splits.val is None and len(splits.test) == 1 and splits.num_classes == 8142
    assert splits.class_counts[8141] == 1 and sum(splits.class_counts) == 2


def _listed(tmp_path, present, absent):
    for name in present:
        _image(tmp_path / name, 0)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{n} {i % 2}\n" for i, n in enumerate(present + absent)))
    return listing


def test_missing_images_are_found_when_the_dataset_is_built(tmp_path):
    gone = [f"gone/{i}.png" for i in range(7)]
    listing = _listed(tmp_path, ["a/0.png", "a/1.png"], gone)
    with pytest.raises(FileNotFoundError) as info:
        ListFileDataset(str(tmp_path), str(listing), num_classes=2)
    message = str(info.value)
    assert message.startswith(f"7 of the 9 images listed in {listing} do not exist: ")
    assert f"{tmp_path}/gone/0.png (line 3)" in message and "and 2 more" in message
    assert "gone/5.png" not in message  # the first five are named, the rest counted
    assert "DATASETS.ON_BAD_IMAGE 'skip'" in message


def test_skip_leaves_missing_images_out(tmp_path):
    listing = _listed(tmp_path, ["a/0.png", "b/1.png", "a/2.png"], ["a/gone.png"])
    ds = ListFileDataset(str(tmp_path), str(listing), num_classes=2, on_bad_image="skip")
    assert len(ds) == 3 and ds.skipped_missing == 1
    assert ds.labels.tolist() == [0, 1, 0] and ds.line(2) == f"{listing}:3"
    assert ds.path(1).endswith("b/1.png")


def test_skip_still_fails_when_no_image_exists(tmp_path):
    listing = _listed(tmp_path, [], ["x.png", "y.png"])
    with pytest.raises(FileNotFoundError, match="None of the 2 images listed in .* exists"):
        ListFileDataset(str(tmp_path), str(listing), num_classes=2, on_bad_image="skip")


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"\n  \n", "lists no images"),
        (b"a.png 0\ncaf\xe9.png 1\n", r":2: not UTF-8 text"),
        (b"x" * 500 + b"\n", r":1: expected 'relative/path label', got 'x{77}\.\.\.'"),
    ],
)
def test_unusable_list_files(tmp_path, content, problem):
    listing = tmp_path / "list.txt"
    listing.write_bytes(content)
    with pytest.raises(DatasetError, match=problem):
        ListFileDataset(str(tmp_path), str(listing), num_classes=2)


def test_a_utf8_byte_order_mark_is_ignored(tmp_path):
    _image(tmp_path / "img" / "0.png", 0)
    _image(tmp_path / "img" / "1.png", 0)
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xef\xbb\xbfimg/0.png 0\nimg/1.png 1\n")  # as Windows Notepad saves
    ds = ListFileDataset(str(tmp_path), str(listing), num_classes=2)
    assert len(ds) == 2 and ds.labels.tolist() == [0, 1]
    assert ds.path(0) == str(tmp_path / "img" / "0.png") and ds.line(1) == f"{listing}:2"
    # Line numbers (and byte offsets) stay those of the file.
    listing.write_bytes(b"\xef\xbb\xbfimg/0.png 0\nimg/1.png x\n")
    with pytest.raises(DatasetError, match=f"{listing}:2: label 'x'"):
        ListFileDataset(str(tmp_path), str(listing), num_classes=2)
    listing.write_bytes(b"\xef\xbb\xbfimg/\xe9.png 0\n")
    with pytest.raises(DatasetError, match=f"{listing}:1: not UTF-8 text .* at byte 7\\)"):
        ListFileDataset(str(tmp_path), str(listing), num_classes=2)


@pytest.mark.parametrize(
    "path,reason",
    [
        ("/etc/passwd", "an absolute path"),
        ("../../x.png", "'..' climbs out of it"),
        ("img/../../x.png", "'..' climbs out of it"),
        ("..", "'..' climbs out of it"),
    ],
)
def test_paths_outside_the_root_are_refused(tmp_path, path, reason):
    root = tmp_path / "root"
    _image(root / "img" / "0.png", 0)
    listing = root / "list.txt"
    listing.write_text(f"img/0.png 0\n{path} 1\n")
    with pytest.raises(DatasetError) as info:
        ListFileDataset(str(root), str(listing), num_classes=2, check_files=False)
    message = str(info.value)
    assert message.startswith(f"{listing}:2: image path '{path}' lies outside DATASETS.ROOT")
    assert reason in message and "DATASETS.ALLOW_PATHS_OUTSIDE_ROOT True" in message


def test_paths_outside_the_root_are_read_when_allowed(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    _image(elsewhere / "a.png", 7)
    root.mkdir()
    listing = root / "list.txt"
    listing.write_text(f"{elsewhere / 'a.png'} 0\n../elsewhere/a.png 1\n")
    ds = ListFileDataset(str(root), str(listing), num_classes=2, allow_outside_root=True)
    assert len(ds) == 2 and np.asarray(ds[1][0])[0, 0, 0] == 7


def test_symlinked_folders_and_absolute_paths_inside_the_root_are_accepted(tmp_path):
    disk, root = tmp_path / "disk", tmp_path / "root"
    _image(disk / "train" / "a.png", 9)
    root.mkdir()
    (root / "train").symlink_to(disk / "train", target_is_directory=True)
    _image(root / "own" / "b.png", 3)
    listing = root / "list.txt"
    # Resolved, train/a.png lies outside the root: the check is lexical on purpose.
    listing.write_text(f"train/a.png 0\n./own/../own/b.png 1\n{root / 'own' / 'b.png'} 1\n")
    ds = ListFileDataset(str(root), str(listing), num_classes=2)
    assert len(ds) == 3 and np.asarray(ds[0][0])[0, 0, 0] == 9


def test_every_list_dataset_refuses_outside_paths_unless_the_config_allows(tmp_path):
    _image(tmp_path / "outside.png", 0)
    root = tmp_path / "root"
    _image(root / "a.png", 0)
    lists = {
        "ImageNetLT": ("ImageNet_LT_train.txt", "ImageNet_LT_val.txt", "ImageNet_LT_test.txt"),
        "PlacesLT": ("Places_LT_train.txt", "Places_LT_val.txt", "Places_LT_test.txt"),
        "INaturalist2018": ("iNaturalist18_train.txt", "iNaturalist18_val.txt"),
    }
    for name, files in lists.items():
        for file in files[:-1]:
            (root / file).write_text("a.png 0\n")
        (root / files[-1]).write_text("a.png 0\n../outside.png 1\n")  # the test list
        cfg = get_cfg()
        cfg.merge_from_list(["DATASETS.NAME", name, "DATASETS.ROOT", str(root)])
        assert cfg.DATASETS.ALLOW_PATHS_OUTSIDE_ROOT is False
        with pytest.raises(DatasetError, match=f"{files[-1]}:2: image path '../outside.png'"):
            build_datasets(cfg)
        cfg.merge_from_list(["DATASETS.ALLOW_PATHS_OUTSIDE_ROOT", True])
        assert len(build_datasets(cfg).test) == 2
