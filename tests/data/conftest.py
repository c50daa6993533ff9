"""Helpers shared by the data tests: writers of format-correct dataset files."""

import io
import os
import pickle
import struct

import numpy as np

from ride_dive.data.datasets.safe_pickle import _numpy_reconstruct

_RECONSTRUCT = _numpy_reconstruct()


class Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler that writes like Python 2 did for the official CIFAR files.

    Python 2 ``str`` objects (dict keys, array bytes, dtype codes) are BINSTRING opcodes,
    which Python 3 reads back as ``bytes`` under ``encoding='bytes'``, and NumPy's
    reconstruct function carries its NumPy 1 module name.
    """

    def __init__(self, file):
        super().__init__(file, protocol=2)

    def _save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str

    def save_global(self, obj, name=None):
        if obj is _RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_py2(obj, path):
    """Write ``obj`` to ``path`` as a Python-2-style protocol-2 pickle."""
    buffer = io.BytesIO()
    Py2StylePickler(buffer).dump(obj)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def index_images(n):
    """CIFAR rows whose first two bytes encode the row index (recoverable after LT selection)."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    data[:, 0] = np.arange(n) // 256
    data[:, 1] = np.arange(n) % 256
    return data


def decode_index(images):
    """Inverse of ``index_images`` on uint8 tensors (N, 3, 32, 32)."""
    flat = images.reshape(len(images), -1).long()
    return (flat[:, 0] * 256 + flat[:, 1]).numpy()


def write_cifar10(root, train_labels, test_labels):
    """Official cifar-10-batches-py layout: 5 training batches and test_batch."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    data = index_images(len(train_labels))
    for i, part in enumerate(np.array_split(np.arange(len(train_labels)), 5)):
        batch = {
            b"batch_label": b"training batch",
            b"labels": [int(v) for v in train_labels[part]],
            b"data": data[part],
            b"filenames": [b"x.png"] * len(part),
        }
        dump_py2(batch, os.path.join(folder, f"data_batch_{i + 1}"))
    dump_py2(
        {b"labels": [int(v) for v in test_labels], b"data": index_images(len(test_labels))},
        os.path.join(folder, "test_batch"),
    )
    return folder


def write_cifar100(root, train_labels, test_labels, names=None):
    """Official cifar-100-python layout: train, test and (optionally) meta."""
    folder = os.path.join(root, "cifar-100-python")
    os.makedirs(folder, exist_ok=True)
    for name, labels in (("train", train_labels), ("test", test_labels)):
        dump_py2(
            {
                b"fine_labels": [int(v) for v in labels],
                b"coarse_labels": [int(v) // 5 for v in labels],
                b"data": index_images(len(labels)),
            },
            os.path.join(folder, name),
        )
    if names is not None:
        dump_py2({b"fine_label_names": names}, os.path.join(folder, "meta"))
    return folder
