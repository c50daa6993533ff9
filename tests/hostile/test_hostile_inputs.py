"""Every hostile input of tests/hostile/hostile_inputs.py, i.e. every row of
docs/HOSTILE_INPUTS.md.

Each case runs its tool's ``cli()`` (tools/train_net.py or tools/convert_checkpoint.py) in
this process (cheap); a representative few also run ``python tools/<tool>`` as a real
process, where a traceback, a payload that ran, or an exception that escaped a DataLoader
worker shows up exactly as a user would see it.
"""

import contextlib
import importlib.util
import io
import os

import pytest

from tests.conftest import ROOT
from tests.hostile import hostile_inputs as hostile

_TOOLS = {}


def _tool(name: str):
    """``tools/<name>`` loaded by file: a "tools" package elsewhere on sys.path must not
    shadow the repository's."""
    if name not in _TOOLS:
        module_name = "_" + os.path.splitext(name)[0]
        spec = importlib.util.spec_from_file_location(
            module_name, os.path.join(ROOT, "tools", name)
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[name] = module
    return _TOOLS[name]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The in-process runs are tiny: a second intra-op thread only adds spin-waits."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("hostile"))
    hostile.build_fixtures(root)
    return root


def _run_in_process(case, root):
    """``cli(args)`` of the case's tool, which returns the exit code (it never exits)."""
    cli = _tool(case.tool).cli
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(case.args(root))
    return hostile.Outcome(code, out.getvalue(), err.getvalue())


def _skip_if_needed(case):
    reason = case.skip() if case.skip else ""
    if reason:
        pytest.skip(reason)


def test_fixtures_are_live(hostile_root):
    """The malicious inputs do run code when loaded naively, so refusing them means something."""
    import pickle

    import torch

    marker = os.path.join(hostile_root, hostile.MARKER)
    with open(
        os.path.join(hostile_root, "cifar_evil", "cifar-10-batches-py", "data_batch_1"), "rb"
    ) as f:
        pickle.load(f)
    assert os.path.exists(marker)
    os.remove(marker)
    torch.load(os.path.join(hostile_root, "evil.pth"), weights_only=False)
    assert os.path.exists(marker)
    os.remove(marker)
    # commands.Popen: a plain unpickler reads Python 2's name as subprocess.Popen.
    process = torch.load(os.path.join(hostile_root, "popen.pth"), weights_only=False)["config"]
    assert process.wait() == 0 and os.path.exists(marker)
    os.remove(marker)


@pytest.mark.parametrize("case", hostile.CASES, ids=[c.id for c in hostile.CASES])
def test_hostile_input(case, hostile_root):
    _skip_if_needed(case)
    before = hostile.snapshot(case, hostile_root)
    outcome = _run_in_process(case, hostile_root)
    problems = hostile.check(case, hostile_root, outcome, before)
    assert problems == [], f"{problems}\n{outcome.stderr[-3000:]}"


@pytest.mark.parametrize("case_id", hostile.REAL_PROCESS_CASES)
def test_hostile_input_in_a_real_process(case_id, hostile_root):
    case = hostile.CASES_BY_ID[case_id]
    _skip_if_needed(case)
    outcome = hostile.run_subprocess(case, hostile_root)
    problems = hostile.check(case, hostile_root, outcome, {})
    assert problems == [], f"{problems}\n{outcome.stderr[-3000:]}"
    assert outcome.stderr.startswith("ERROR: ")  # one paragraph, nothing before it


def test_every_case_is_documented():
    doc = open(os.path.join(ROOT, "docs", "HOSTILE_INPUTS.md")).read()
    missing = [c.id for c in hostile.CASES if f"`[{c.id}]`" not in doc]
    assert missing == [], "regenerate the table: python tests/hostile/hostile_inputs.py"
    commands = [c.id for c in hostile.CASES if f"# {c.id}\n" not in doc]
    assert commands == [], "regenerate the commands: hostile_inputs.py --keep DIR --commands"
