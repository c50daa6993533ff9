"""The tiny inputs behind tests/hostile/hostile_inputs.py: good data and hostile variants of it.

A synthetic set (``TINY``; ``RIDE`` makes its model a 3-expert RIDE), a 6-image
ImageNet-LT-style list set (``LISTS``), CIFAR-10 folders (``CIFAR``) with wrong-format and
malicious batches, broken config files (``_BASE_`` loops, non-mappings, duplicate keys),
checkpoints (malicious, garbage, foreign objects, another width, expert or class count, files
of the original RIDE and classifier-balancing code) and a finished one-epoch run for the
``--resume`` cases.
"""

import os
import pickle
import sys
import types
from typing import List, Sequence

from tests.conftest import RIDE_OVERRIDES

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
# Added to TINY: the tests' tiny RIDE model (tests/conftest.py) with 3 experts.
RIDE = [str(v) for item in RIDE_OVERRIDES.items() for v in item] + ["MODEL.RIDE.NUM_EXPERTS", "3"]
# The converter's configs, at the widths of the reference networks (tests/checkpoint).
RIDE_CIFAR_CONFIG = "configs/CIFAR100-LT/ride_4e_r32_if100.yaml"
RIDE_IMAGENET_CONFIG = "configs/ImageNet-LT/ride_4e_x50.yaml"
CIFAR_WIDTHS = ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.WIDTH_MULT", "0.25"]
BOTTLENECK_WIDTHS = [
    "MODEL.DEVICE",
    "cpu",
    "MODEL.BACKBONE.WIDTH_MULT",
    "0.125",
    "MODEL.RESNET.GROUPS",
    "2",
    "MODEL.RESNET.WIDTH_PER_GROUP",
    "16",
]


class _Payload:
    """Unpickling this runs ``touch <marker>``: a real, if harmless, code-execution payload."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _FakeModules:
    """Make ``modules`` importable while pickling only: the pickle names globals of modules
    that do not exist when it is loaded (the loader must not find them)."""

    def __init__(self, *modules: types.ModuleType):
        self.modules = modules

    def __enter__(self):
        self.saved = {m.__name__: sys.modules.get(m.__name__) for m in self.modules}
        sys.modules.update({m.__name__: m for m in self.modules})

    def __exit__(self, *exc):
        for name, old in self.saved.items():
            if old is None:
                del sys.modules[name]
            else:
                sys.modules[name] = old


def _module_class(module: str, name: str, **attrs) -> type:
    """A class (and its module) named ``module.name`` for pickling."""
    cls = type(name, (), attrs)
    cls.__module__, cls.__qualname__ = module, name
    return cls


def _foreign_checkpoint(path: str) -> None:
    """Weights next to an object of another framework: harmless, but no weights."""
    import torch

    settings = _module_class("framework_x", "Settings")
    module = types.ModuleType("framework_x")
    module.Settings = settings
    with _FakeModules(module):
        torch.save({"state_dict": {"w": torch.ones(1)}, "config": settings()}, path)


def _popen_checkpoint(path: str, marker: str) -> None:
    """A protocol-2 pickle naming ``commands.Popen`` (Python 2's name for subprocess): a
    plain unpickler maps it to ``subprocess.Popen`` and runs ``touch <marker>``."""
    import torch

    def popen(cmd):  # only the name is pickled
        raise AssertionError("never called")

    popen.__module__, popen.__qualname__ = "commands", "Popen"
    module = types.ModuleType("commands")
    module.Popen = popen
    payload = _module_class(
        "payload", "Payload", __reduce__=lambda self: (popen, (["touch", marker],))
    )
    with _FakeModules(module):
        torch.save({"state_dict": {}, "config": payload()}, path, pickle_protocol=2)


def _original_ride_checkpoint(path: str, top_k: int = 0) -> None:
    """A checkpoint as the original RIDE code saves it (tests/checkpoint/original_files.py):
    a tiny 3-expert RIDE ResNet-32 (``top_k``: with expert-assignment routers) and a pickled
    ``parse_config.ConfigParser``."""
    import torch

    from tests.checkpoint.original_files import save_ride
    from tests.checkpoint.reference_nets import RefResNetS

    torch.manual_seed(0)
    net = RefResNetS(num_experts=3, top_k=top_k)
    save_ride(path, net, args={"num_experts": 3, **({"top_choices_num": top_k} if top_k else {})})


def _original_decoupling_checkpoint(path: str) -> None:
    """A checkpoint as classifier-balancing saves it (a NumPy scalar, the legacy format)."""
    import numpy as np
    import torch

    from tests.checkpoint.reference_nets import RefDotProduct, RefFeatureResNeXt

    torch.manual_seed(0)
    parallel = torch.nn.DataParallel
    torch.save(
        {
            "epoch": 90,
            "best_acc": np.float64(0.5),
            "state_dict_best": {
                "feat_model": parallel(RefFeatureResNeXt()).state_dict(),
                "classifier": parallel(RefDotProduct()).state_dict(),
            },
        },
        path,
        _use_new_zipfile_serialization=False,
    )


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
        "outside_absolute.txt": good + "/etc/passwd 0\n",
        "outside_dotdot.txt": good + "../../x.png 0\n",
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
    with open(os.path.join(folder, "bom.txt"), "wb") as f:  # as Windows Notepad saves it
        f.write(b"\xef\xbb\xbf" + good.encode())


def _config_files(root: str) -> None:
    """Config files broken in every way a YAML file can be (besides unknown_key/broken)."""
    os.makedirs(os.path.join(root, "base_is_a_folder"), exist_ok=True)
    files = {
        "loop_a.yaml": "_BASE_: loop_b.yaml\nSOLVER:\n  MAX_EPOCHS: 1\n",
        "loop_b.yaml": "_BASE_: loop_a.yaml\n",
        "loop_self.yaml": "_BASE_: loop_self.yaml\n",
        "loop_list.yaml": "_BASE_: [good.yaml, loop_list.yaml]\n",
        "good.yaml": "SOLVER:\n  MAX_EPOCHS: 1\n",
        "passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/bin/sh\n",
        "base_passwd.yaml": "_BASE_: passwd\n",
        "base_folder.yaml": "_BASE_: base_is_a_folder\n",
        "empty.yaml": "# nothing but a comment\n",
        "top_level_list.yaml": "- MODEL\n- SOLVER\n",
        "duplicate_key.yaml": "SOLVER:\n  BASE_LR: 0.1\n  MAX_EPOCHS: 2\n  BASE_LR: 0.2\n",
        "a_file": "a plain file where OUTPUT_DIR wants a folder\n",
    }
    for name, text in files.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    read_only = os.path.join(root, "read_only")
    os.makedirs(read_only, exist_ok=True)
    os.chmod(read_only, 0o555)  # blocks writes unless running as root


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


def _save_weights(
    path: str, opts: List[str], counts: Sequence[int] = (20, 12, 7, 5, 4, 3, 3, 2, 2, 2)
) -> None:
    """Weights of the model ``opts`` builds (no training: only the shapes matter)."""
    from ride_dive.checkpoint import atomic_torch_save
    from ride_dive.engine import setup_cfg
    from ride_dive.modeling import build_model

    cfg = setup_cfg("", opts)
    model = build_model(cfg, list(counts))
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
    _save_weights(
        os.path.join(root, "classes_12.pth"), TINY + ["MODEL.NUM_CLASSES", "12"], [2] * 12
    )
    _save_weights(os.path.join(root, "ride_3e.pth"), TINY + RIDE)  # experts only, no routers
    _foreign_checkpoint(os.path.join(root, "foreign.pth"))
    _popen_checkpoint(os.path.join(root, "popen.pth"), marker)
    _original_ride_checkpoint(os.path.join(root, "RIDE_original.pth"))
    _original_ride_checkpoint(os.path.join(root, "RIDE_EA_original.pth"), top_k=5)
    _original_decoupling_checkpoint(os.path.join(root, "decoupling_original.pth"))
    with open(os.path.join(root, "unknown_key.yaml"), "w") as f:
        f.write("SOLVER:\n  MAX_EPOCH: 3\n")
    with open(os.path.join(root, "broken.yaml"), "w") as f:
        f.write("SOLVER:\n  BASE_LR: [0.1\n")
    _config_files(root)
    _finished_run(os.path.join(root, "run"))
