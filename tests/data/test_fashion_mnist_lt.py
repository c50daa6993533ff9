"""Fashion-MNIST-LT: IDX reading/writing, header checks, file search and the real files."""

import gzip
import os

import numpy as np
import pytest
import torch

from ride_dive.config import get_cfg
from ride_dive.data import build_datasets
from ride_dive.data.datasets.fashion_mnist_lt import (
    FILES,
    SYSTEM_DIR,
    FashionMNISTLT,
    default_search_dirs,
    read_idx,
    write_idx,
)
from ride_dive.data.datasets.lt_generator import lt_counts


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    images = np.random.RandomState(0).randint(0, 256, (5, 7, 6)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(str(tmp_path / f"img{suffix}"), images)
    write_idx(str(tmp_path / f"lab{suffix}"), labels)
    assert np.array_equal(read_idx(str(tmp_path / f"img{suffix}"), 2051), images)
    assert np.array_equal(read_idx(str(tmp_path / f"lab{suffix}"), 2049), labels)
    raw = (tmp_path / f"img{suffix}").read_bytes()
    header = gzip.decompress(raw)[:16] if suffix else raw[:16]
    assert header == bytes.fromhex("00000803 00000005 00000007 00000006")


def test_bad_magic_and_truncation_name_the_file(tmp_path):
    path = str(tmp_path / "labels")
    write_idx(path, np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=f"{path} has magic number 2049, expected 2051"):
        read_idx(path, 2051)
    with open(path, "ab") as f:
        f.write(b"\x00")
    with pytest.raises(ValueError, match=f"{path} declares dimensions \\(4,\\).*holds 5 bytes"):
        read_idx(path, 2049)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="Cannot read IDX file .*bad.gz"):
        read_idx(str(tmp_path / "bad.gz"), 2051)


def _write_fmnist(folder, per_class, test_per_class, gz):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(3)
    arrays = []
    for count in (per_class, test_per_class):
        labels = rng.permutation(np.repeat(np.arange(10), count)).astype(np.uint8)
        images = rng.randint(0, 256, (len(labels), 28, 28)).astype(np.uint8)
        arrays += [images, labels]
    for name, array in zip(FILES, arrays):
        write_idx(os.path.join(folder, name + (".gz" if gz else "")), array)
    return arrays


def test_loads_torchvision_layout_and_builds_lt(tmp_path):
    folder = tmp_path / "FashionMNIST" / "raw"
    train_x, train_y, _, _ = _write_fmnist(str(folder), 30, 4, gz=False)
    splits = FashionMNISTLT(
        search_dirs=default_search_dirs(str(tmp_path))[:3], imbalance_factor=10.0, max_per_class=30
    )
    assert splits.class_counts == lt_counts(30, 10, 10.0)
    assert splits.train.images.shape[1:] == (1, 28, 28)
    assert len(splits.test) == 40 and splits.num_classes == 10
    first = splits.train.images[0, 0].numpy()
    matches = [i for i in range(len(train_x)) if np.array_equal(train_x[i], first)]
    assert len(matches) == 1 and train_y[matches[0]] == splits.train.labels[0]


def test_builds_from_config_root(tmp_path):
    _write_fmnist(str(tmp_path / "fashion-mnist"), 12, 2, gz=True)
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "DATASETS.NAME",
            "FashionMNISTLT",
            "DATASETS.ROOT",
            str(tmp_path),
            "DATASETS.MAX_PER_CLASS",
            10,
            "DATASETS.IMBALANCE_FACTOR",
            5,
            "DATASETS.VAL_SOURCE",
            "train_remainder",
            "DATASETS.VAL_PER_CLASS",
            2,
        ]
    )
    splits = build_datasets(cfg)
    assert splits.class_counts == lt_counts(10, 10, 5.0)
    assert torch.equal(torch.bincount(splits.val.labels), torch.full((10,), 2))
    assert splits.train.class_names[9] == "Ankle boot" and splits.train.mean == [0.286]


def test_mismatched_files_and_missing_data(tmp_path):
    folder = tmp_path / "fashion-mnist"
    _write_fmnist(str(folder), 3, 1, gz=True)
    write_idx(str(folder / (FILES[1] + ".gz")), np.zeros(7, np.uint8))
    with pytest.raises(ValueError, match="holds 30 images but .* holds 7 labels"):
        FashionMNISTLT(search_dirs=[str(folder)], max_per_class=3)
    empty = [str(tmp_path / "a"), str(tmp_path / "b")]
    with pytest.raises(FileNotFoundError) as info:
        FashionMNISTLT(search_dirs=empty)
    message = str(info.value)
    assert all(d in message for d in empty)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "torchvision.datasets.FashionMNIST" in message


def test_search_order_from_config_root():
    dirs = default_search_dirs("/data")
    assert dirs == ["/data/fashion-mnist", "/data/FashionMNIST/raw", "/data", SYSTEM_DIR]


@pytest.mark.skipif(not os.path.isdir(SYSTEM_DIR), reason="dataset-fashion-mnist not installed")
def test_real_debian_files():
    splits = FashionMNISTLT(search_dirs=[SYSTEM_DIR], imbalance_factor=100.0)
    assert splits.class_counts == [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10]
    assert len(splits.train) == 2478 and len(splits.test) == 10000
    assert splits.train.images.shape[1:] == (1, 28, 28)
    assert np.array_equal(np.bincount(splits.test.labels.numpy()), [1000] * 10)


@pytest.mark.skipif(not os.path.isdir(SYSTEM_DIR), reason="dataset-fashion-mnist not installed")
def test_real_files_hold_a_500_per_class_validation_split_disjoint_from_training():
    from ride_dive.data.datasets.fashion_mnist_lt import _find_files, _load
    from ride_dive.data.datasets.lt_generator import make_lt_split

    paths = _find_files(SYSTEM_DIR)
    train_labels = _load(paths[0], paths[1]).labels.numpy()
    test_labels = _load(paths[2], paths[3]).labels.numpy()
    split = make_lt_split(train_labels, test_labels, 10, 1000, 100.0, 0, "train_remainder", 500)
    assert split.val_from == "train"
    assert np.array_equal(np.bincount(train_labels[split.val]), [500] * 10)
    assert not set(np.asarray(split.val).tolist()) & set(np.asarray(split.train).tolist())
