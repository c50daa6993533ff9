#!/usr/bin/env python
"""Feed tools/train_net.py (and tools/convert_checkpoint.py) hostile inputs and print what a
user sees (docs/HOSTILE_INPUTS.md).

The test oracle: ``python -m pytest tests/hostile -q`` runs every case as a test
(tests/hostile/test_hostile_inputs.py). Run as a script, it regenerates the table:

    python tests/hostile/hostile_inputs.py          # every case; prints the markdown table
    python tests/hostile/hostile_inputs.py --only list-bad-line weights-malicious-eval
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile   # keep the generated inputs
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile --build-only   # inputs only
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile --commands     # commands only

Each case runs ``python tools/train_net.py ARGS`` (or the case's other tool) in a fresh
process, exactly as a user would, on tiny generated inputs (a synthetic set, a 6-image
ImageNet-LT-style list set, a 40-image CIFAR-10 folder, broken config files, checkpoints of
width-0.25 ResNet-32s and of tiny networks of the original RIDE / classifier-balancing code),
and checks the exit code, key phrases of the message, that no Python traceback was printed,
and what must not change: the marker file a malicious pickle would create, the checkpoints of
a run that ``--resume`` was pointed at, and the output folder of a run refused up front.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # run as a script: make ``ride_dive`` and ``tests`` importable

from tests.hostile.hostile_fixtures import (  # noqa: E402
    BOTTLENECK_WIDTHS,
    CIFAR,
    CIFAR_WIDTHS,
    LISTS,
    MARKER,
    RIDE,
    RIDE_CIFAR_CONFIG,
    RIDE_IMAGENET_CONFIG,
    TINY,
    build_fixtures,
)

TRAIN_NET = "train_net.py"
CONVERT = "convert_checkpoint.py"
# No message may advise loading a checkpoint with full unpickling.
NEVER_ADVISED = ("weights_only=False",)


@dataclass
class Case:
    """One hostile input: ``args(root)`` for ``tools/<tool>``, and what the user must see.

    ``expect`` and every phrase of ``also`` must be in the output (stderr when the exit code is
    not 0), ``absent`` and ``NEVER_ADVISED`` must not; ``$H`` in them stands for the fixture
    folder. ``check`` names what must be unchanged afterwards, besides the marker file of the
    malicious pickles (no code ran): "marker" (nothing more), "run" (every file of the resumed
    run), "run-checkpoints" (its .pth files, last_checkpoint and config.yaml; log.txt records
    the failed attempt) or "output-empty" (nothing was written under ``fresh_output(root,
    id)``, the case's OUTPUT_DIR or converter output). ``skip()`` gives a reason not to run
    the case here ("" to run it).
    """

    id: str
    input: str
    args: Callable[[str], List[str]]
    expect: str
    exit_code: int = 2
    check: str = "marker"
    tests: str = ""
    tool: str = TRAIN_NET
    also: Sequence[str] = ()
    absent: Sequence[str] = ()
    skip: Optional[Callable[[], str]] = None


def fresh_output(h: str, case_id: str) -> str:
    """The folder that an "output-empty" case writes to, which must stay empty."""
    return os.path.join(h, "fresh", case_id)


def _out(h: str) -> List[str]:
    return ["OUTPUT_DIR", os.path.join(h, "out")]


def _fresh(h: str, case_id: str) -> List[str]:
    return ["OUTPUT_DIR", fresh_output(h, case_id)]


def _config(h: str, name: str, case_id: str) -> List[str]:
    """``--config-file $H/<name>`` on the tiny set, into the case's own OUTPUT_DIR."""
    return ["--config-file", os.path.join(h, name)] + TINY + _fresh(h, case_id)


def _weights(h: str, name: str, *extra: str, eval_only: bool = True) -> List[str]:
    return (
        (["--eval-only"] if eval_only else [])
        + TINY
        + list(extra)
        + ["MODEL.WEIGHTS", os.path.join(h, name)]
        + _out(h)
    )


def _convert(h: str, case_id: str, source: str, config: str, *opts: str) -> List[str]:
    """convert_checkpoint.py of ``$H/<source>`` with a packaged config, into a fresh folder."""
    output = os.path.join(fresh_output(h, case_id), "converted.pth")
    source = os.path.join(h, source)
    return ["--from", "ride", source, "--config-file", os.path.join(ROOT, config), output, *opts]


def _root_user() -> str:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "running as root, for whom chmod 555 does not block writes"
    return ""


def _run(h: str) -> List[str]:
    return ["OUTPUT_DIR", os.path.join(h, "run")]


def _lists(h: str, *extra: str) -> List[str]:
    return TINY + LISTS + ["DATASETS.ROOT", os.path.join(h, "lists")] + list(extra) + _out(h)


def _cifar_args(h: str, folder: str) -> List[str]:
    return TINY + CIFAR + ["DATASETS.ROOT", os.path.join(h, folder)] + _out(h)


CONFIG_TESTS = "tests/config/test_config.py"
YAML_TESTS = "tests/config/test_yaml_file.py"
RUN_DIR_TESTS = "tests/utils/test_run_dir.py"
LIST_TESTS = "tests/data/test_list_file.py"
BAD_IMAGE_TESTS = "tests/data/test_bad_images.py"
CIFAR_TESTS = "tests/data/test_cifar_lt.py"
CKPT_TESTS = "tests/checkpoint/test_serialization.py"
CHECKPOINTER_TESTS = "tests/checkpoint/test_checkpointer.py"
IMPORTER_TESTS = "tests/checkpoint/test_importers.py"

CASES = [
    # --- configuration -----------------------------------------------------------------
    Case(
        "unknown-key",
        "unknown key on the command line (`SOLVER.BASE_LRR 0.1`)",
        lambda h: TINY + ["SOLVER.BASE_LRR", "0.1"] + _out(h),
        "Did you mean: SOLVER.BASE_LR",
        tests=CONFIG_TESTS,
    ),
    Case(
        "unknown-key-yaml",
        "unknown key in a YAML file (`SOLVER: {MAX_EPOCH: 3}`)",
        lambda h: ["--config-file", os.path.join(h, "unknown_key.yaml")] + TINY + _out(h),
        "Unknown config key 'SOLVER.MAX_EPOCH'",
        tests=CONFIG_TESTS,
    ),
    Case(
        "wrong-type",
        "wrong type (`SOLVER.MAX_EPOCHS ten`)",
        lambda h: TINY + ["SOLVER.MAX_EPOCHS", "ten"] + _out(h),
        "SOLVER.MAX_EPOCHS (from command line) must be an integer",
        tests=CONFIG_TESTS,
    ),
    Case(
        "float-for-int",
        "a fraction where an integer is needed (`SOLVER.BATCH_SIZE 2.5`)",
        lambda h: TINY + ["SOLVER.BATCH_SIZE", "2.5"] + _out(h),
        "must be an integer",
        tests=CONFIG_TESTS,
    ),
    Case(
        "value-for-section",
        "a value for a whole section (`SOLVER 3`)",
        lambda h: TINY + ["SOLVER", "3"] + _out(h),
        "SOLVER (from command line) is a section",
        tests=CONFIG_TESTS,
    ),
    Case(
        "negative-epochs",
        "negative epochs (`SOLVER.MAX_EPOCHS -1`)",
        lambda h: TINY + ["SOLVER.MAX_EPOCHS", "-1"] + _out(h),
        "SOLVER.MAX_EPOCHS must be > 0, got -1",
        tests=CONFIG_TESTS,
    ),
    Case(
        "zero-epochs",
        "zero epochs (`SOLVER.MAX_EPOCHS 0`)",
        lambda h: TINY + ["SOLVER.MAX_EPOCHS", "0"] + _out(h),
        "SOLVER.MAX_EPOCHS must be > 0",
        tests=CONFIG_TESTS,
    ),
    Case(
        "imbalance-below-1",
        "imbalance factor < 1 (`DATASETS.IMBALANCE_FACTOR 0.5`)",
        lambda h: TINY + ["DATASETS.IMBALANCE_FACTOR", "0.5"] + _out(h),
        "DATASETS.IMBALANCE_FACTOR must be >= 1",
        tests=CONFIG_TESTS,
    ),
    Case(
        "empty-class",
        "a prior-aware loss on so few images that tail classes get none "
        "(`MODEL.LOSS.NAME BalancedSoftmaxLoss DATASETS.MAX_PER_CLASS 20 "
        "DATASETS.IMBALANCE_FACTOR 100`)",
        lambda h: (
            TINY
            + [
                "MODEL.LOSS.NAME",
                "BalancedSoftmaxLoss",
                "DATASETS.MAX_PER_CLASS",
                "20",
                "DATASETS.IMBALANCE_FACTOR",
                "100",
            ]
            + _out(h)
        ),
        "needs training images of every class",
        tests="tests/modeling/test_losses.py",
    ),
    Case(
        "negative-momentum",
        "out-of-range value (`SOLVER.MOMENTUM -0.9`)",
        lambda h: TINY + ["SOLVER.MOMENTUM", "-0.9"] + _out(h),
        "SOLVER.MOMENTUM must be in [0, 1)",
        tests=CONFIG_TESTS,
    ),
    Case(
        "bad-choice",
        "invalid choice (`DATASETS.ON_BAD_IMAGE ignore`)",
        lambda h: TINY + ["DATASETS.ON_BAD_IMAGE", "ignore"] + _out(h),
        "DATASETS.ON_BAD_IMAGE must be 'fail' or 'skip'",
        tests=CONFIG_TESTS,
    ),
    Case(
        "bad-best-metric",
        "a metric that does not exist (`TEST.BEST_METRIC acc`)",
        lambda h: TINY + ["TEST.BEST_METRIC", "acc"] + _out(h),
        "TEST.BEST_METRIC must be one of",
        tests=CONFIG_TESTS,
    ),
    Case(
        "unknown-loss",
        "unknown registry name (`MODEL.LOSS.NAME BSCE`)",
        lambda h: TINY + ["MODEL.LOSS.NAME", "BSCE"] + _out(h),
        "Valid names: BalancedSoftmaxLoss",
        tests="tests/tools/test_train_net.py",
    ),
    Case(
        "unknown-dataset",
        "unknown dataset (`DATASETS.NAME CIFAR10`)",
        lambda h: TINY + ["DATASETS.NAME", "CIFAR10"] + _out(h),
        "Did you mean 'CIFAR10LT'?",
    ),
    Case(
        "channels",
        "input channels that do not match the data (`MODEL.BACKBONE.IN_CHANNELS 1` on RGB images)",
        lambda h: _lists(h, "MODEL.BACKBONE.IN_CHANNELS", "1"),
        "have 3 channel(s), but MODEL.BACKBONE.IN_CHANNELS is 1",
    ),
    Case(
        "pixel-mean",
        "one normalisation value for RGB images (`INPUT.PIXEL_MEAN [0.5]`)",
        lambda h: TINY + ["INPUT.PIXEL_MEAN", "[0.5]", "INPUT.PIXEL_STD", "[0.5]"] + _out(h),
        "INPUT.PIXEL_MEAN / PIXEL_STD have 1 values",
    ),
    Case(
        "config-missing",
        "config file that does not exist",
        lambda h: ["--config-file", os.path.join(h, "nope.yaml")] + TINY + _out(h),
        "Config file not found",
        tests=CONFIG_TESTS,
    ),
    Case(
        "config-not-yaml",
        "config file that is not valid YAML",
        lambda h: ["--config-file", os.path.join(h, "broken.yaml")] + TINY + _out(h),
        "is not valid YAML",
    ),
    Case(
        "base-loop",
        "`_BASE_` chain that loops (`loop_a.yaml` -> `loop_b.yaml` -> `loop_a.yaml`)",
        lambda h: _config(h, "loop_a.yaml", "base-loop"),
        "loops back on itself: $H/loop_a.yaml -> $H/loop_b.yaml -> $H/loop_a.yaml",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "base-self",
        "a config file whose `_BASE_` names itself",
        lambda h: _config(h, "loop_self.yaml", "base-self"),
        "loops back on itself: $H/loop_self.yaml -> $H/loop_self.yaml",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "base-loop-list",
        "the same in a `_BASE_` list (`_BASE_: [good.yaml, loop_list.yaml]`)",
        lambda h: _config(h, "loop_list.yaml", "base-loop-list"),
        "loops back on itself: $H/loop_list.yaml -> $H/loop_list.yaml",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "base-not-yaml",
        "`_BASE_` naming a text file that is no config (`/etc/passwd`-style lines)",
        lambda h: _config(h, "base_passwd.yaml", "base-not-yaml"),
        "$H/passwd holds a single string at the top level, not a mapping of config keys",
        also=("is named by _BASE_ in $H/base_passwd.yaml",),
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "base-folder",
        "`_BASE_` naming a folder",
        lambda h: _config(h, "base_folder.yaml", "base-folder"),
        "$H/base_is_a_folder is a directory, not a YAML config file",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "config-empty",
        "empty config file (a comment only)",
        lambda h: _config(h, "empty.yaml", "config-empty"),
        "$H/empty.yaml is empty (or only comments)",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "config-list",
        "config file holding a list at the top level",
        lambda h: _config(h, "top_level_list.yaml", "config-list"),
        "$H/top_level_list.yaml holds a list at the top level, not a mapping of config keys",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "teacher-config-list",
        "the same file as `MODEL.TEACHER.CONFIG_FILE` (nothing may be written to OUTPUT_DIR)",
        lambda h: (
            TINY
            + ["MODEL.TEACHER.CONFIG_FILE", os.path.join(h, "top_level_list.yaml")]
            + _fresh(h, "teacher-config-list")
        ),
        "MODEL.TEACHER.CONFIG_FILE is not a usable config: $H/top_level_list.yaml holds a list",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "config-duplicate-key",
        "a key given twice in one YAML mapping (`SOLVER: {BASE_LR: 0.1, ..., BASE_LR: 0.2}`)",
        lambda h: _config(h, "duplicate_key.yaml", "config-duplicate-key"),
        "$H/duplicate_key.yaml:4: the key 'BASE_LR' is given twice in the same mapping "
        "(first on line 2)",
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "steps-nested",
        "a nested list for a list of integers (`SOLVER.STEPS [[1]]`)",
        lambda h: TINY + ["SOLVER.STEPS", "[[1]]"] + _fresh(h, "steps-nested"),
        "SOLVER.STEPS (from command line) must be a list of integers",
        also=("element 0 of [[1]] is [1], which is a list",),
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "steps-strings",
        "strings in a list of integers (`SOLVER.STEPS \"['a']\"`)",
        lambda h: TINY + ["SOLVER.STEPS", "['a']"] + _fresh(h, "steps-strings"),
        "SOLVER.STEPS (from command line) must be a list of integers",
        also=("element 0 of ['a'] is 'a', which is a string",),
        check="output-empty",
        tests=YAML_TESTS,
    ),
    Case(
        "epochs-huge",
        "an epoch count no run can end (`SOLVER.MAX_EPOCHS 99999999999999999999999`)",
        lambda h: (
            TINY + ["SOLVER.MAX_EPOCHS", "99999999999999999999999"] + _fresh(h, "epochs-huge")
        ),
        "SOLVER.MAX_EPOCHS must be at most 100,000",
        check="output-empty",
        tests=CONFIG_TESTS,
    ),
    Case(
        "output-dir-file",
        "OUTPUT_DIR below a plain file (`OUTPUT_DIR $H/a_file/sub`)",
        lambda h: TINY + ["OUTPUT_DIR", os.path.join(h, "a_file", "sub")],
        "OUTPUT_DIR '$H/a_file/sub' cannot be written (a file, not a folder, is in the way)",
        tests=RUN_DIR_TESTS,
    ),
    Case(
        "output-dir-read-only",
        "OUTPUT_DIR in a read-only folder (`chmod 555`; skipped as root)",
        lambda h: TINY + ["OUTPUT_DIR", os.path.join(h, "read_only", "sub")],
        "OUTPUT_DIR '$H/read_only/sub' cannot be written (permission denied)",
        skip=_root_user,
        tests=RUN_DIR_TESTS,
    ),
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
]
CASES_BY_ID = {c.id: c for c in CASES}
# The cases tests/hostile/test_hostile_inputs.py also runs as real processes (the rest run
# the tool's cli() in the test process): a config error, a missing dataset, the malicious
# checkpoint, the wrong architecture, an error raised in a DataLoader worker, and the
# converter refusing a malicious pickle.
REAL_PROCESS_CASES = [
    "negative-epochs",
    "cifar-root-missing",
    "weights-malicious-eval",
    "weights-wrong-arch",
    "image-undecodable",
    "convert-popen",
]


def snapshot(case: Case, root: str) -> Dict[str, bytes]:
    """The files ``case.check`` says must not change."""
    if case.check in ("marker", "output-empty"):
        return {}
    run = os.path.join(root, "run")
    names = sorted(os.listdir(run))
    if case.check == "run-checkpoints":
        names = [n for n in names if n.endswith(".pth") or n in ("last_checkpoint", "config.yaml")]
    contents = {}
    for name in names:
        path = os.path.join(run, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                contents[name] = f.read()
    return contents


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def run_subprocess(case: Case, root: str) -> Outcome:
    """``python tools/<case.tool> ARGS`` in a fresh process, from the repository root."""
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", case.tool), *case.args(root)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    return Outcome(r.returncode, r.stdout, r.stderr)


def _written(folder: str) -> List[str]:
    """The files under ``folder`` (none when it does not exist)."""
    return sorted(
        os.path.relpath(os.path.join(d, n), folder)
        for d, _, names in os.walk(folder)
        for n in names
    )


def check(case: Case, root: str, outcome: Outcome, before: Dict[str, bytes]) -> List[str]:
    """What is wrong with ``outcome`` (an empty list when the case behaved)."""
    problems = []
    text = outcome.stderr if case.exit_code else outcome.stdout + outcome.stderr
    if outcome.exit_code != case.exit_code:
        problems.append(f"exit code {outcome.exit_code}, expected {case.exit_code}")
    if "Traceback" in outcome.stderr:
        problems.append("a traceback was printed")
    for phrase in (case.expect, *case.also):
        if phrase.replace("$H", root) not in text:
            problems.append(f"'{phrase}' is not in the output")
    for phrase in (*case.absent, *NEVER_ADVISED):
        if phrase.replace("$H", root) in text:
            problems.append(f"'{phrase}' is in the output")
    if os.path.exists(os.path.join(root, MARKER)):
        problems.append("the malicious payload ran (marker file created)")
    if snapshot(case, root) != before:
        problems.append("files of the resumed run changed")
    if case.check == "output-empty":
        fresh = fresh_output(root, case.id)
        if not any(a == fresh or a.startswith(fresh + os.sep) for a in case.args(root)):
            problems.append(f"the case does not write to {fresh}")
        written = _written(fresh)
        if written:
            problems.append(f"files were written to {fresh}: {', '.join(written)}")
    return problems


def user_sees(case: Case, outcome: Outcome, root: str) -> str:
    """The line(s) of the output a user reads, with the fixture folder shortened to $H."""
    if case.exit_code:
        lines = outcome.stderr.strip().splitlines()
        text = " ".join(line.strip() for line in lines)
    else:
        hits = [ln for ln in outcome.stdout.splitlines() if case.expect in ln]
        text = hits[0].split("] ", 1)[-1] if hits else ""
    return text.replace(root, "$H").replace(ROOT + os.sep, "")


def _markdown(rows) -> str:
    out = ["| # | input tried | what the user sees | exit code | test |", "|---|---|---|---|---|"]
    for i, (case, seen) in enumerate(rows, start=1):
        seen = seen if len(seen) <= 700 else seen[:697] + "..."
        seen = seen.replace("|", "\\|")
        test = f"`[{case.id}]`"
        if case.id in REAL_PROCESS_CASES:
            test += " (also in a real process)"
        if case.tests:
            test += f", `{case.tests}`"
        out.append(f"| {i} | {case.input} | `{seen}` | {case.exit_code} | {test} |")
    return "\n".join(out)


def _command(case: Case, root: str) -> str:
    args = case.args(root)
    shown = []
    i = 0
    while i < len(args):  # TINY, LISTS and RIDE are printed as variables
        for name, block in (("$TINY", TINY), ("$LISTS", LISTS), ("$RIDE", RIDE)):
            if args[i : i + len(block)] == block:
                shown.append(name)
                i += len(block)
                break
        else:
            shown.append(shlex.quote(args[i]))
            i += 1
    command = f"python tools/{case.tool} " + " ".join(shown)
    return command.replace(root, "$H").replace(ROOT + os.sep, "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="case ids to run")
    parser.add_argument("--keep", default="", help="build the inputs in this folder and keep it")
    parser.add_argument("--commands", action="store_true", help="print the commands only")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="only write the inputs (into --keep) to run commands by hand",
    )
    args = parser.parse_args(argv)
    cases = [CASES_BY_ID[i] for i in args.only] if args.only else CASES
    root = args.keep or tempfile.mkdtemp(prefix="hostile_")
    os.makedirs(root, exist_ok=True)
    if args.commands:
        print(f"H={root}\nTINY='{' '.join(TINY)}'\nLISTS='{' '.join(LISTS)}'")
        print(f"RIDE='{' '.join(RIDE)}'")
        print("\n".join(f"# {c.id}\n{_command(c, root)}" for c in cases))
        return 0
    build_fixtures(root)
    if args.build_only:
        print(root)
        return 0
    rows, failures, skipped = [], 0, 0
    for case in cases:
        reason = case.skip() if case.skip else ""
        if reason:
            skipped += 1
            print(f"skipped {case.id}: {reason}", file=sys.stderr)
            continue
        before = snapshot(case, root)
        outcome = run_subprocess(case, root)
        problems = check(case, root, outcome, before)
        if problems:
            failures += 1
            print(
                f"FAILED {case.id}: {'; '.join(problems)}\n{outcome.stderr[-3000:]}",
                file=sys.stderr,
            )
        rows.append((case, user_sees(case, outcome, root)))
    print(_markdown(rows))
    ran = len(cases) - skipped
    print(
        f"\n{ran - failures}/{ran} cases behaved, {skipped} skipped (inputs in {root})",
        file=sys.stderr,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
