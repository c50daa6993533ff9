"""The hostile configurations: command-line values, YAML files and their ``_BASE_`` chains,
output folders."""

import os

from tests.hostile.hostile_case import (
    CONFIG_TESTS,
    RUN_DIR_TESTS,
    YAML_TESTS,
    Case,
    _config,
    _fresh,
    _lists,
    _out,
    _root_user,
)
from tests.hostile.hostile_fixtures import (
    TINY,
)

CONFIG_CASES = [
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
        "accumulate-zero",
        "no batches per optimizer step (`SOLVER.ACCUMULATE_STEPS 0`)",
        lambda h: TINY + ["SOLVER.ACCUMULATE_STEPS", "0"] + _fresh(h, "accumulate-zero"),
        "SOLVER.ACCUMULATE_STEPS must be >= 1 (1 = no accumulation), got 0",
        check="output-empty",
        tests="tests/engine/test_accumulation.py",
    ),
    Case(
        "mixup-with-ldam",
        "MixUp with a loss that needs hard labels "
        "(`MODEL.LOSS.NAME LDAMLoss INPUT.MIXUP_ALPHA 0.2`)",
        lambda h: TINY + ["MODEL.LOSS.NAME", "LDAMLoss", "INPUT.MIXUP_ALPHA", "0.2"] + _out(h),
        "LDAMLoss (its margin belongs to the one true class) cannot take",
        tests="tests/engine/test_mixing_training.py",
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
]
