#!/usr/bin/env python
"""Feed tools/train_net.py hostile inputs and print what a user sees (docs/HOSTILE_INPUTS.md).

The test oracle: ``python -m pytest tests/hostile -q`` runs every case as a test
(tests/hostile/test_hostile_inputs.py). Run as a script, it regenerates the table:

    python tests/hostile/hostile_inputs.py          # every case; prints the markdown table
    python tests/hostile/hostile_inputs.py --only list-bad-line weights-malicious-eval
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile   # keep the generated inputs
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile --build-only   # inputs only
    python tests/hostile/hostile_inputs.py --keep /tmp/hostile --commands     # commands only

Each case runs ``python tools/train_net.py ARGS`` in a fresh process, exactly as a user
would, on tiny generated inputs (a synthetic set, a 6-image ImageNet-LT-style list set, a
40-image CIFAR-10 folder, checkpoints of a width-0.25 ResNet-32), and checks the exit code,
a key phrase of the message, that no Python traceback was printed, and what must not
change: the marker file a malicious pickle would create, and the checkpoints of a run that
``--resume`` was pointed at.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # run as a script: make ``ride_dive`` and ``tests`` importable

from tests.hostile.hostile_fixtures import (  # noqa: E402
    CIFAR,
    LISTS,
    MARKER,
    TINY,
    build_fixtures,
)

TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")


@dataclass
class Case:
    """One hostile input: ``args(root)`` for train_net.py, and what the user must see.

    ``check`` names what must be unchanged afterwards: "marker" (no code ran),
    "run" (every file of the resumed run) or "run-checkpoints" (its .pth files,
    last_checkpoint and config.yaml; log.txt records the failed attempt).
    """

    id: str
    input: str
    args: Callable[[str], List[str]]
    expect: str
    exit_code: int = 2
    check: str = "marker"
    tests: str = ""


def _out(h: str) -> List[str]:
    return ["OUTPUT_DIR", os.path.join(h, "out")]


def _run(h: str) -> List[str]:
    return ["OUTPUT_DIR", os.path.join(h, "run")]


def _lists(h: str, *extra: str) -> List[str]:
    return TINY + LISTS + ["DATASETS.ROOT", os.path.join(h, "lists")] + list(extra) + _out(h)


def _cifar_args(h: str, folder: str) -> List[str]:
    return TINY + CIFAR + ["DATASETS.ROOT", os.path.join(h, folder)] + _out(h)


CONFIG_TESTS = "tests/config/test_config.py"
LIST_TESTS = "tests/data/test_list_file.py"
BAD_IMAGE_TESTS = "tests/data/test_bad_images.py"
CIFAR_TESTS = "tests/data/test_cifar_lt.py"
CKPT_TESTS = "tests/checkpoint/test_serialization.py"

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
        tests="tests/checkpoint/test_checkpointer.py",
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
]
CASES_BY_ID = {c.id: c for c in CASES}
# The cases tests/hostile/test_hostile_inputs.py also runs as real processes (the rest run
# train_net's cli() in the test process): a config error, a missing dataset, the malicious
# checkpoint, the wrong architecture, and an error raised in a DataLoader worker.
REAL_PROCESS_CASES = [
    "negative-epochs",
    "cifar-root-missing",
    "weights-malicious-eval",
    "weights-wrong-arch",
    "image-undecodable",
]


def snapshot(case: Case, root: str) -> Dict[str, bytes]:
    """The files ``case.check`` says must not change."""
    if case.check == "marker":
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


def run_subprocess(args: List[str]) -> Outcome:
    r = subprocess.run(
        [sys.executable, TRAIN_NET, *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    return Outcome(r.returncode, r.stdout, r.stderr)


def check(case: Case, root: str, outcome: Outcome, before: Dict[str, bytes]) -> List[str]:
    """What is wrong with ``outcome`` (an empty list when the case behaved)."""
    problems = []
    text = outcome.stderr if case.exit_code else outcome.stdout + outcome.stderr
    if outcome.exit_code != case.exit_code:
        problems.append(f"exit code {outcome.exit_code}, expected {case.exit_code}")
    if "Traceback" in outcome.stderr:
        problems.append("a traceback was printed")
    if case.expect not in text:
        problems.append(f"'{case.expect}' is not in the output")
    if os.path.exists(os.path.join(root, MARKER)):
        problems.append("the malicious payload ran (marker file created)")
    if snapshot(case, root) != before:
        problems.append("files of the resumed run changed")
    return problems


def user_sees(case: Case, outcome: Outcome, root: str) -> str:
    """The line(s) of the output a user reads, with the fixture folder shortened to $H."""
    if case.exit_code:
        lines = outcome.stderr.strip().splitlines()
        text = " ".join(line.strip() for line in lines)
    else:
        hits = [ln for ln in outcome.stdout.splitlines() if case.expect in ln]
        text = hits[0].split("] ", 1)[-1] if hits else ""
    return text.replace(root, "$H")


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
    while i < len(args):  # TINY and LISTS are printed as variables
        for name, block in (("$TINY", TINY), ("$LISTS", LISTS)):
            if args[i : i + len(block)] == block:
                shown.append(name)
                i += len(block)
                break
        else:
            shown.append(shlex.quote(args[i]))
            i += 1
    return "python tools/train_net.py " + " ".join(shown).replace(root, "$H")


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
        print("\n".join(f"# {c.id}\n{_command(c, root)}" for c in cases))
        return 0
    build_fixtures(root)
    if args.build_only:
        print(root)
        return 0
    rows, failures = [], 0
    for case in cases:
        before = snapshot(case, root)
        outcome = run_subprocess(case.args(root))
        problems = check(case, root, outcome, before)
        if problems:
            failures += 1
            print(
                f"FAILED {case.id}: {'; '.join(problems)}\n{outcome.stderr[-3000:]}",
                file=sys.stderr,
            )
        rows.append((case, user_sees(case, outcome, root)))
    print(_markdown(rows))
    print(
        f"\n{len(cases) - failures}/{len(cases)} cases behaved (inputs in {root})", file=sys.stderr
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
