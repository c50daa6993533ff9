"""The tiny inputs behind tests/hostile/hostile_inputs.py: good data and hostile variants of it.

A synthetic set (``TINY``), a 6-image ImageNet-LT-style list set (``LISTS``), CIFAR-10
folders (``CIFAR``) with wrong-format and malicious batches, checkpoints (malicious,
garbage, another width) and a finished one-epoch run for the ``--resume`` cases.
"""

import os
import pickle
from typing import List

MARKER = "PWNED"  # what the malicious pickles would create in the fixture folder

# A ~1 s run: width-0.25 ResNet-32 on 10 synthetic 16x16 classes, one epoch, CPU.
TINY = [
    "MODEL.DEVICE",
    "cpu",
    "MODEL.BACKBONE.WIDTH_MULT",
    "0.25",
    "DATASETS.NAME",
    "SyntheticLT",
    "DATASETS.MAX_PER_CLASS",
    "20",
    "DATASETS.IMBALANCE_FACTOR",
    "10.0",
    "DATASETS.SYNTHETIC.IMAGE_SIZE",
    "16",
    "DATASETS.SYNTHETIC.TEST_PER_CLASS",
    "4",
    "INPUT.CROP_SIZE",
    "16",
    "INPUT.PADDING",
    "2",
    "SOLVER.BATCH_SIZE",
    "16",
    "SOLVER.MAX_EPOCHS",
    "1",
    "SOLVER.WARMUP_EPOCHS",
    "0",
    "SOLVER.CHECKPOINT_PERIOD",
    "1",
    "TEST.BATCH_SIZE",
    "64",
]
# The 6-image list set (ImageNet-LT layout: 1000 classes); 8x8 images, no resize.
LISTS = [
    "DATASETS.NAME",
    "ImageNetLT",
    "INPUT.CROP_SIZE",
    "8",
    "INPUT.TEST_RESIZE",
    "8",
    "DATALOADER.NUM_WORKERS",
    "0",
    "SOLVER.BATCH_SIZE",
    "4",
]
CIFAR = [
    "DATASETS.NAME",
    "CIFAR10LT",
    "DATASETS.MAX_PER_CLASS",
    "4",
    "DATASETS.IMBALANCE_FACTOR",
    "2.0",
]


class _Payload:
    """Unpickling this runs ``touch <marker>``: a real, if harmless, code-execution payload."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _images(folder: str) -> None:
    import numpy as np
    from PIL import Image

    os.makedirs(os.path.join(folder, "img"), exist_ok=True)
    for i in range(6):
        pixels = np.random.RandomState(i).randint(0, 256, (8, 8, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, "img", f"{i}.png"))
    with open(os.path.join(folder, "img", "broken.png"), "wb") as f:
        f.write(b"this is not an image")
    with open(os.path.join(folder, "img", "0.png"), "rb") as f:
        head = f.read()[:60]  # a PNG cut off inside its pixel data
    with open(os.path.join(folder, "img", "truncated.png"), "wb") as f:
        f.write(head)


def _list_files(folder: str) -> None:
    good = "".join(f"img/{i}.png {i % 3}\n" for i in range(6))
    files = {
        "ImageNet_LT_train.txt": good,
        "ImageNet_LT_val.txt": good,
        "ImageNet_LT_test.txt": good,
        "bad_line.txt": good + "img/0.png\n",
        "bad_label.txt": good + "img/1.png 1000\n",
        "missing.txt": good + "img/gone_1.png 0\nimg/gone_2.png 1\n",
        "broken.txt": good + "img/broken.png 0\n",
        "truncated.txt": good + "img/truncated.png 1\n",
        "empty.txt": "\n",
    }
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    with open(os.path.join(folder, "latin1.txt"), "wb") as f:
        f.write(good.encode() + "img/caf\u00e9.png 0\n".encode("latin-1"))


def _cifar(root: str, first_batch=None, skip: str = "") -> None:
    """A 40-image CIFAR-10 folder; ``first_batch`` replaces data_batch_1, ``skip`` is left out."""
    import numpy as np

    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    labels = np.repeat(np.arange(10), 4)
    batches = {f"data_batch_{i + 1}": part for i, part in enumerate(np.split(labels, 5))}
    batches["test_batch"] = np.arange(10)
    for name, part in batches.items():
        if name == skip:
            continue
        content = {
            b"data": np.zeros((len(part), 3072), np.uint8),
            b"labels": [int(v) for v in part],
        }
        if name == "data_batch_1" and first_batch is not None:
            content = first_batch
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(content, f, protocol=4)


def _save_weights(path: str, opts: List[str]) -> None:
    """Weights of the model ``opts`` builds (no training: only the shapes matter)."""
    from ride_dive.checkpoint import atomic_torch_save
    from ride_dive.engine import setup_cfg
    from ride_dive.modeling import build_model

    cfg = setup_cfg("", opts)
    model = build_model(cfg, [20, 12, 7, 5, 4, 3, 3, 2, 2, 2])
    atomic_torch_save({"model": model.state_dict()}, path)


def _finished_run(output_dir: str) -> None:
    """A real one-epoch run of TINY in ``output_dir`` (checkpoints a --resume would load)."""
    import contextlib
    import io

    from ride_dive.engine import DefaultTrainer, setup_cfg

    cfg = setup_cfg("", TINY + ["OUTPUT_DIR", output_dir])
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()


def build_fixtures(root: str) -> None:
    """Write every hostile input (and the good inputs they are variants of) under ``root``."""
    import numpy as np
    import torch

    lists = os.path.join(root, "lists")
    _images(lists)
    _list_files(lists)
    marker = os.path.join(root, MARKER)
    _cifar(os.path.join(root, "cifar_missing_batch"), skip="data_batch_3")
    _cifar(os.path.join(root, "cifar_list"), first_batch=[1, 2, 3])
    _cifar(
        os.path.join(root, "cifar_shape"),
        first_batch={b"data": np.zeros((8, 100), np.uint8), b"labels": [0] * 8},
    )
    _cifar(
        os.path.join(root, "cifar_evil"),
        first_batch={b"data": _Payload(marker), b"labels": [0] * 8},
    )
    torch.save({"model": _Payload(marker)}, os.path.join(root, "evil.pth"))
    with open(os.path.join(root, "garbage.pth"), "wb") as f:
        f.write(b"not a checkpoint at all")
    _save_weights(os.path.join(root, "width_0.5.pth"), TINY + ["MODEL.BACKBONE.WIDTH_MULT", "0.5"])
    with open(os.path.join(root, "unknown_key.yaml"), "w") as f:
        f.write("SOLVER:\n  MAX_EPOCH: 3\n")
    with open(os.path.join(root, "broken.yaml"), "w") as f:
        f.write("SOLVER:\n  BASE_LR: [0.1\n")
    _finished_run(os.path.join(root, "run"))
