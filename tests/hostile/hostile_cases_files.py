"""The hostile files: datasets and list files, images, checkpoints, and the checkpoint
converter's inputs."""

import os

from tests.hostile.hostile_case import (
    BAD_IMAGE_TESTS,
    CHECKPOINTER_TESTS,
    CIFAR_TESTS,
    CKPT_TESTS,
    CONVERT,
    IMPORTER_TESTS,
    LIST_TESTS,
    Case,
    _cifar_args,
    _convert,
    _lists,
    _out,
    _run,
    _weights,
)
from tests.hostile.hostile_fixtures import (
    BOTTLENECK_WIDTHS,
    CIFAR_WIDTHS,
    LISTS,
    RIDE,
    RIDE_CIFAR_CONFIG,
    RIDE_IMAGENET_CONFIG,
    TINY,
)

PRETRAINED_TESTS = "tests/modeling/test_library_trunks.py"


def _pretrained(path: str) -> list:
    """A torchvision ResNet-18 trunk whose pretrained weights are ``path``."""
    return [
        "MODEL.BACKBONE.NAME",
        "TorchvisionBackbone",
        "MODEL.BACKBONE.ARCH",
        "resnet18",
        "MODEL.BACKBONE.PRETRAINED",
        path,
    ]


FILE_CASES = [
    # --- datasets ------------------------------------------------------------------------
    Case(
        "cifar-root-missing",
        "missing dataset root (CIFAR-10-LT)",
        lambda h: _cifar_args(h, "nowhere"),
        "CIFAR10LT: directory not found",
        tests=CIFAR_TESTS,
    ),
    Case(
        "cifar-batch-missing",
        "a missing dataset file (CIFAR `data_batch_3`)",
        lambda h: _cifar_args(h, "cifar_missing_batch"),
        "CIFAR batch file not found",
        tests=CIFAR_TESTS,
    ),
    Case(
        "list-root-missing",
        "missing dataset root (ImageNet-LT lists)",
        lambda h: TINY + LISTS + ["DATASETS.ROOT", os.path.join(h, "nowhere")] + _out(h),
        "ImageNetLT: list file not found",
        tests=LIST_TESTS,
    ),
    Case(
        "list-bad-line",
        "list file line without a label",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "bad_line.txt"),
        "bad_line.txt:7: expected 'relative/path label'",
        tests=LIST_TESTS,
    ),
    Case(
        "list-bad-label",
        "list file label out of range (1000 for ImageNet-LT)",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "bad_label.txt"),
        "bad_label.txt:7: label 1000 is out of range [0, 1000)",
        tests=LIST_TESTS,
    ),
    Case(
        "list-not-utf8",
        "list file that is not UTF-8",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "latin1.txt"),
        "latin1.txt:7: not UTF-8 text",
        tests=LIST_TESTS,
    ),
    Case(
        "list-empty",
        "empty list file",
        lambda h: _lists(h, "DATASETS.TEST_LIST", "empty.txt"),
        "empty.txt lists no images",
        tests=LIST_TESTS,
    ),
    Case(
        "list-bom",
        "list file starting with a UTF-8 byte order mark (the test list): its line 1 is read",
        lambda h: _lists(h, "DATASETS.TEST_LIST", "bom.txt"),
        "test (final weights) (6 images)",
        exit_code=0,
        tests=LIST_TESTS,
    ),
    Case(
        "list-outside-absolute",
        "list file line with an absolute path (`/etc/passwd 0`)",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "outside_absolute.txt"),
        "outside_absolute.txt:7: image path '/etc/passwd' lies outside DATASETS.ROOT",
        tests=LIST_TESTS,
    ),
    Case(
        "list-outside-dotdot",
        "list file line climbing out of the root (`../../x.png 0`)",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "outside_dotdot.txt"),
        "outside_dotdot.txt:7: image path '../../x.png' lies outside DATASETS.ROOT",
        tests=LIST_TESTS,
    ),
    Case(
        "list-outside-allowed",
        "the same with `DATASETS.ALLOW_PATHS_OUTSIDE_ROOT True`: past that check, the file is "
        "looked for",
        lambda h: _lists(
            h,
            "DATASETS.TRAIN_LIST",
            "outside_dotdot.txt",
            "DATASETS.ALLOW_PATHS_OUTSIDE_ROOT",
            "True",
        ),
        "do not exist: $H/lists/../../x.png (line 7)",
        absent=("lies outside DATASETS.ROOT",),
        tests=LIST_TESTS,
    ),
    Case(
        "images-missing",
        "images named in a list file that do not exist",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "missing.txt"),
        "2 of the 8 images listed in",
        tests=LIST_TESTS,
    ),
    Case(
        "images-missing-skip",
        "the same with `DATASETS.ON_BAD_IMAGE skip`",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "missing.txt", "DATASETS.ON_BAD_IMAGE", "skip"),
        "leaving out the 2 of the 8 images",
        exit_code=0,
        tests=LIST_TESTS,
    ),
    Case(
        "cifar-wrong-format",
        "CIFAR pickle of the wrong format (a list)",
        lambda h: _cifar_args(h, "cifar_list"),
        "is not an official CIFAR python batch: expected a dict",
        tests=CIFAR_TESTS,
    ),
    Case(
        "cifar-wrong-shape",
        "CIFAR pickle with 100-byte rows",
        lambda h: _cifar_args(h, "cifar_shape"),
        "rows must hold 3072 bytes",
        tests=CIFAR_TESTS,
    ),
    Case(
        "cifar-malicious",
        "CIFAR pickle whose `__reduce__` runs `os.system`",
        lambda h: _cifar_args(h, "cifar_evil"),
        "Refusing to load",
        tests=CIFAR_TESTS,
    ),
    Case(
        "image-undecodable",
        "an image that fails to decode, read in a DataLoader worker (`DATALOADER.NUM_WORKERS 2`)",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "broken.txt", "DATALOADER.NUM_WORKERS", "2"),
        "Cannot decode image",
        tests=BAD_IMAGE_TESTS,
    ),
    Case(
        "image-truncated",
        "a truncated PNG",
        lambda h: _lists(h, "DATASETS.TRAIN_LIST", "truncated.txt"),
        "truncated.png (listed at",
        tests=BAD_IMAGE_TESTS,
    ),
    Case(
        "image-undecodable-skip",
        "an undecodable training image with `DATASETS.ON_BAD_IMAGE skip`",
        lambda h: _lists(
            h,
            "DATASETS.TRAIN_LIST",
            "broken.txt",
            "DATASETS.ON_BAD_IMAGE",
            "skip",
            "DATALOADER.NUM_WORKERS",
            "2",
        ),
        "skipped 1 unreadable image(s) of broken.txt",
        exit_code=0,
        tests=BAD_IMAGE_TESTS,
    ),
    Case(
        "image-undecodable-skip-test",
        "an undecodable test image with `DATASETS.ON_BAD_IMAGE skip`",
        lambda h: _lists(h, "DATASETS.TEST_LIST", "broken.txt", "DATASETS.ON_BAD_IMAGE", "skip"),
        "left out of the evaluation",
        exit_code=0,
        tests=BAD_IMAGE_TESTS,
    ),
    # --- checkpoints -----------------------------------------------------------------------
    Case(
        "weights-malicious-eval",
        "checkpoint whose pickle runs `os.system`, with --eval-only",
        lambda h: ["--eval-only"] + TINY + ["MODEL.WEIGHTS", os.path.join(h, "evil.pth")] + _out(h),
        "nothing in the file was executed",
        tests=CKPT_TESTS,
    ),
    Case(
        "weights-malicious-train",
        "the same as MODEL.WEIGHTS for training",
        lambda h: TINY + ["MODEL.WEIGHTS", os.path.join(h, "evil.pth")] + _out(h),
        "nothing in the file was executed",
        tests=CKPT_TESTS,
    ),
    Case(
        "weights-garbage",
        "checkpoint that is not a PyTorch file",
        lambda h: (
            ["--eval-only"] + TINY + ["MODEL.WEIGHTS", os.path.join(h, "garbage.pth")] + _out(h)
        ),
        "truncated or corrupt",
        tests="tests/tools/test_train_net.py",
    ),
    Case(
        "weights-missing",
        "checkpoint file that does not exist",
        lambda h: ["--eval-only"] + TINY + ["MODEL.WEIGHTS", os.path.join(h, "nope.pth")] + _out(h),
        "Checkpoint file not found",
        tests=CKPT_TESTS,
    ),
    Case(
        "weights-wrong-arch",
        "checkpoint of another architecture (width 0.5 into 0.25)",
        lambda h: (
            ["--eval-only"] + TINY + ["MODEL.WEIGHTS", os.path.join(h, "width_0.5.pth")] + _out(h)
        ),
        "shape mismatches",
        tests=CHECKPOINTER_TESTS,
    ),
    Case(
        "weights-foreign-class",
        "checkpoint pickling an object of another framework (`framework_x.Settings`)",
        lambda h: _weights(h, "foreign.pth"),
        "it pickles objects of framework_x.Settings",
        also=("nothing in the file was executed", "tools/convert_checkpoint.py"),
        tests=CKPT_TESTS,
    ),
    Case(
        "weights-popen",
        "protocol-2 checkpoint whose pickle calls `commands.Popen` (Python 2's subprocess)",
        lambda h: _weights(h, "popen.pth", eval_only=False),
        "its pickle names commands.Popen",
        also=("nothing in the file was executed",),
        tests=CKPT_TESTS,
    ),
    Case(
        "weights-original-ride",
        "an unconverted checkpoint of the original RIDE code as MODEL.WEIGHTS",
        lambda h: _weights(h, "RIDE_original.pth", *RIDE, eval_only=False),
        "is a checkpoint of the original RIDE",
        also=("python tools/convert_checkpoint.py --from ride $H/RIDE_original.pth",),
        tests=IMPORTER_TESTS,
    ),
    Case(
        "weights-original-decoupling",
        "an unconverted classifier-balancing (Decoupling) checkpoint, with --eval-only",
        lambda h: _weights(h, "decoupling_original.pth"),
        "is a checkpoint of the original classifier-balancing",
        also=("python tools/convert_checkpoint.py --from decoupling",),
        tests=IMPORTER_TESTS,
    ),
    Case(
        "weights-no-router",
        "RIDE weights without routers for a model with routers (`MODEL.ROUTER.ENABLED True`)",
        lambda h: _weights(
            h, "ride_3e.pth", *RIDE, "MODEL.ROUTER.ENABLED", "True", eval_only=False
        ),
        "evaluate these weights with the experts' config (MODEL.ROUTER.ENABLED False)",
        tests=CHECKPOINTER_TESTS,
    ),
    Case(
        "weights-no-router-eval",
        "the same with --eval-only of a router stage (`MODEL.ROUTER.TRAIN True`)",
        lambda h: _weights(
            h, "ride_3e.pth", *RIDE, "MODEL.ROUTER.ENABLED", "True", "MODEL.ROUTER.TRAIN", "True"
        ),
        "evaluating it would run untrained routers",
        tests=CHECKPOINTER_TESTS,
    ),
    Case(
        "weights-experts",
        "3-expert weights for a 2-expert model (`MODEL.RIDE.NUM_EXPERTS 2`)",
        lambda h: _weights(h, "ride_3e.pth", *RIDE, "MODEL.RIDE.NUM_EXPERTS", "2"),
        "The file has 3 experts, the config builds 2: set MODEL.RIDE.NUM_EXPERTS 3",
        tests=CHECKPOINTER_TESTS,
    ),
    Case(
        "weights-classes",
        "12-class weights for a 10-class model",
        lambda h: _weights(h, "classes_12.pth"),
        "The file's classifier has 12 classes, the model 10: set MODEL.NUM_CLASSES 12",
        tests=CHECKPOINTER_TESTS,
    ),
    Case(
        "resume-bad-config",
        "`--resume` of a finished run with an invalid override",
        lambda h: ["--resume"] + TINY + ["SOLVER.MAX_EPOCHS", "-2"] + _run(h),
        "SOLVER.MAX_EPOCHS must be > 0",
        check="run",
    ),
    Case(
        "resume-wrong-arch",
        "`--resume` of that run with another architecture",
        lambda h: ["--resume"] + TINY + ["MODEL.BACKBONE.WIDTH_MULT", "0.5"] + _run(h),
        "do not fit",
        check="run-checkpoints",
    ),
    # --- tools/convert_checkpoint.py -------------------------------------------------------
    Case(
        "convert-router-dropped",
        "converting a RIDE file with expert-assignment routers with a config without routers",
        lambda h: _convert(
            h,
            "convert-router-dropped",
            "RIDE_EA_original.pth",
            RIDE_CIFAR_CONFIG,
            *CIFAR_WIDTHS,
            "MODEL.RIDE.NUM_EXPERTS",
            "3",
        ),
        "pass --drop-router",
        also=("configs/CIFAR10-LT/ride_4e_r32_if100_router.yaml",),
        check="output-empty",
        tool=CONVERT,
        tests=IMPORTER_TESTS,
    ),
    Case(
        "convert-other-family",
        "converting a CIFAR RIDE ResNet-32 file with an ImageNet-LT (ResNeXt-50) config",
        lambda h: _convert(
            h,
            "convert-other-family",
            "RIDE_original.pth",
            RIDE_IMAGENET_CONFIG,
            *BOTTLENECK_WIDTHS,
            "MODEL.RIDE.NUM_EXPERTS",
            "3",
        ),
        "a config of that architecture: configs/CIFAR10-LT/ride_3e_r32_if100.yaml",
        also=("set it to 'RIDEResNet32'",),
        check="output-empty",
        tool=CONVERT,
        tests=IMPORTER_TESTS,
    ),
    Case(
        "convert-popen",
        "converting the `commands.Popen` pickle",
        lambda h: _convert(
            h,
            "convert-popen",
            "popen.pth",
            RIDE_CIFAR_CONFIG,
            *CIFAR_WIDTHS,
            "MODEL.RIDE.NUM_EXPERTS",
            "3",
        ),
        "it names commands.Popen (that is, subprocess.Popen)",
        also=("nothing in it was executed",),
        check="output-empty",
        tool=CONVERT,
        tests=IMPORTER_TESTS,
    ),
    # --- pretrained trunks (MODEL.BACKBONE.PRETRAINED) ---------------------------------------
    Case(
        "pretrained-missing",
        "pretrained trunk file that does not exist",
        lambda h: TINY + _pretrained(os.path.join(h, "nope.pth")) + _out(h),
        "MODEL.BACKBONE.PRETRAINED='$H/nope.pth': no such file",
        tests=PRETRAINED_TESTS,
    ),
    Case(
        "pretrained-malicious",
        "pretrained trunk file whose pickle runs `os.system`",
        lambda h: TINY + _pretrained(os.path.join(h, "evil.pth")) + _out(h),
        "nothing in the file was executed",
        also=("MODEL.BACKBONE.PRETRAINED",),
        tests=PRETRAINED_TESTS,
    ),
    Case(
        "pretrained-sha256",
        "pretrained trunk file whose sha256 is not MODEL.BACKBONE.PRETRAINED_SHA256",
        lambda h: (
            TINY
            + _pretrained(os.path.join(h, "evil.pth"))
            + ["MODEL.BACKBONE.PRETRAINED_SHA256", "ab" * 32]
            + _out(h)
        ),
        "but MODEL.BACKBONE.PRETRAINED_SHA256 expects",
        tests=PRETRAINED_TESTS,
    ),
]
