"""CIFAR-LT from official-format pickles: exact index set, sizes, safe loading, errors."""

import os
import pickle
import re
import shutil

import numpy as np
import pytest
import torch

from ride_dive.config import get_cfg
from ride_dive.data import DatasetError, build_datasets
from ride_dive.data.datasets.cifar_lt import CIFAR10LT, CIFAR100LT
from ride_dive.data.datasets.lt_generator import lt_counts

from .conftest import decode_index, dump_py2, write_cifar10, write_cifar100
from .test_lt_generator import reference_lt_indices


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory):
    """Official CIFAR-10 structure: 50,000 training labels, 5000 per class, shuffled."""
    root = tmp_path_factory.mktemp("cifar10")
    rng = np.random.RandomState(7)
    train = rng.permutation(np.repeat(np.arange(10), 5000))
    test = rng.permutation(np.repeat(np.arange(10), 1000))
    write_cifar10(str(root), train, test)
    yield str(root), train, test
    shutil.rmtree(root)  # 150 MB; pytest would otherwise keep it for three sessions


@pytest.mark.parametrize("factor,size", [(100.0, 12406), (10.0, 20431)])
def test_cifar10_lt_reproduces_reference_index_set(cifar10_root, factor, size):
    root, train_labels, test_labels = cifar10_root
    splits = CIFAR10LT(root=root, imbalance_factor=factor)
    expected = reference_lt_indices(train_labels, lt_counts(5000, 10, factor), seed=0)
    assert len(splits.train) == size == len(expected)
    assert np.array_equal(decode_index(splits.train.images), expected)
    assert torch.equal(splits.train.labels, torch.from_numpy(train_labels[expected]))
    assert splits.class_counts == lt_counts(5000, 10, factor)
    assert len(splits.test) == 10000 and splits.val is None and splits.num_classes == 10
    assert np.array_equal(decode_index(splits.test.images), np.arange(10000))
    assert splits.train.images.shape[1:] == (3, 32, 32)
    assert splits.train.class_names[0] == "airplane"


def test_cifar10_val_from_remainder_with_max_per_class(cifar10_root):
    root, train_labels, _ = cifar10_root
    splits = CIFAR10LT(
        root=root,
        imbalance_factor=10.0,
        max_per_class=4000,
        val_source="train_remainder",
        val_per_class=50,
    )
    train_idx = set(decode_index(splits.train.images).tolist())
    val_idx = decode_index(splits.val.images)
    assert splits.class_counts[0] == 4000
    assert not train_idx & set(val_idx.tolist())
    assert np.array_equal(np.bincount(train_labels[val_idx]), [50] * 10)


def test_cifar100_lt_small(tmp_path):
    train = np.random.RandomState(1).permutation(np.repeat(np.arange(100), 12))
    test = np.repeat(np.arange(100), 3)
    names = [f"name{i}".encode() for i in range(100)]
    write_cifar100(str(tmp_path), train, test, names)
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "DATASETS.NAME",
            "CIFAR100LT",
            "DATASETS.ROOT",
            str(tmp_path),
            "DATASETS.IMBALANCE_FACTOR",
            12,
            "DATASETS.MAX_PER_CLASS",
            12,
            "DATASETS.VAL_SOURCE",
            "test",
            "DATASETS.VAL_PER_CLASS",
            1,
        ]
    )
    splits = build_datasets(cfg)
    assert isinstance(splits, CIFAR100LT)
    expected = reference_lt_indices(train, lt_counts(12, 100, 12.0))
    assert np.array_equal(decode_index(splits.train.images), expected)
    assert splits.class_counts == lt_counts(12, 100, 12.0)
    assert len(splits.val) == 100 and len(splits.test) == 200
    val, rest = decode_index(splits.val.images), decode_index(splits.test.images)
    assert not set(val.tolist()) & set(rest.tolist())
    assert splits.train.class_names[3] == "name3"


class _Payload:
    """Unpickling this would create a directory (harmless proof of code execution)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def _cifar10_folder_with(tmp_path, first_batch):
    folder = write_cifar10(str(tmp_path), np.repeat(np.arange(10), 2), np.arange(10))
    path = os.path.join(folder, "data_batch_1")
    with open(path, "wb") as f:
        f.write(first_batch)
    return path


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Payload(str(marker)), b"labels": []}, protocol=4)
    path = _cifar10_folder_with(tmp_path, payload)
    with pytest.raises(DatasetError) as info:
        CIFAR10LT(root=str(tmp_path))
    message = str(info.value)
    assert path in message and "cifar.html" in message
    assert re.search(r"'\w+\.mkdir'", message)  # the forbidden global is named
    assert not marker.exists()


@pytest.mark.parametrize(
    "content,problem",
    [
        ({b"labels": [0]}, "key b'data' is missing"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "3072 bytes"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
        (
            {b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]},
            r"labels must lie in \[0, 10\)",
        ),
        ([1, 2, 3], "expected a dict"),
    ],
)
def test_wrong_format_is_reported(tmp_path, content, problem):
    path = os.path.join(write_cifar10(str(tmp_path), np.arange(10), np.arange(10)), "data_batch_1")
    dump_py2(content, path)
    with pytest.raises(DatasetError, match=problem) as info:  # a ConfigError: printed cleanly
        CIFAR10LT(root=str(tmp_path))
    assert path in str(info.value)


def test_garbage_and_missing_files(tmp_path):
    path = _cifar10_folder_with(tmp_path, b"this is not a pickle")
    with pytest.raises(ValueError, match="Cannot read .*data_batch_1"):
        CIFAR10LT(root=str(tmp_path))
    os.remove(path)
    with pytest.raises(FileNotFoundError, match="data_batch_1.*cifar.html"):
        CIFAR10LT(root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cifar-100-python.*untar"):
        CIFAR100LT(root=str(tmp_path / "nowhere"))
