"""What a hostile input is (``Case``: the arguments of the tool it runs, what the user must
see, what must stay unchanged) and the argument builders the case lists share
(``hostile_cases_config.py``, ``hostile_cases_files.py``, ``hostile_cases_pretrained.py``)."""

import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from tests.hostile.hostile_fixtures import (
    CIFAR,
    LISTS,
    TINY,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
IMPORTER_TESTS = "tests/checkpoint/test_importer_messages.py"
IMPORTER_PICKLE_TESTS = "tests/checkpoint/test_importer_pickles.py"
