"""The engine knows no method: no registered component is named in ride_dive/engine's
code (class checks like ``isinstance(m, DiVELoss)``, strings like ``"NCMHead"``).

Methods plug in through the components' own ``before_training`` and the evaluators; a name
in a docstring or comment is fine, a name in the code is not.
"""

import ast
import os

from tests.conftest import ROOT
from tests.registry_names import REGISTERED_NAMES

ENGINE = os.path.join(ROOT, "ride_dive", "engine")


def _code_names(path):
    """Identifiers, attribute names and non-docstring string constants of a module."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.rsplit(".", 1)[-1])
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            names.update(node.value.replace('"', " ").replace("'", " ").split())
    return names


def test_no_registered_method_component_is_named_in_the_engine():
    # Datasets and samplers are data, not methods; the generic meta-architecture names are
    # checked too (the engine must not branch on "RIDE" either).
    methods = set().union(
        *(REGISTERED_NAMES[r] for r in ("META_ARCH", "BACKBONE", "HEAD", "LOSS", "EVALUATOR"))
    )
    offenders = {}
    for file in sorted(os.listdir(ENGINE)):
        if file.endswith(".py"):
            found = _code_names(os.path.join(ENGINE, file)) & methods
            if found:
                offenders[file] = sorted(found)
    assert offenders == {}


def test_the_check_sees_a_class_check_and_a_string():
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(
            '"""Mentions NCMHead in a docstring only."""\n'
            "def f(m, cfg):\n"
            '    """DiVELoss here is fine."""\n'
            "    return isinstance(m, DiVELoss) or cfg.NAME == 'NCMHead'\n"
        )
    try:
        assert {"DiVELoss", "NCMHead"} <= _code_names(f.name)
        assert "Mentions" not in _code_names(f.name)
    finally:
        os.unlink(f.name)
