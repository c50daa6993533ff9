"""The tree is clean under ruff.toml: lint (pycodestyle, pyflakes, import order, 100
columns) and format (``ruff format --check``)."""

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT

needs_ruff = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not installed (pip install -e '.[tests]')",
)


@needs_ruff
def test_ruff_check_is_clean():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", ROOT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@needs_ruff
def test_ruff_format_leaves_the_tree_unchanged():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", ROOT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
