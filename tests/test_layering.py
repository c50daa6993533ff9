"""The package's layers (docs/ARCHITECTURE.md): a module imports only from its own
package or from packages in lower layers, and the installed package holds no benchmark or
publishing code."""

import ast
import os

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "ride_dive")
# Lowest first; packages in one layer do not import each other.
LAYERS = [
    {"config"},
    {"utils"},
    {"solver", "data", "modeling"},
    {"checkpoint"},
    {"model_zoo"},
    {"evaluation"},
    {"analysis"},
    {"engine"},
]
LAYER_OF = {package: i for i, layer in enumerate(LAYERS) for package in layer}


def _imported_packages(path, package, depth=None):
    """The ride_dive sub-packages a module imports (absolute or relative), with the line.

    ``depth``: how deep the module is below ``ride_dive/`` (1 for ``ride_dive/<pkg>/x.py``);
    by default from its path.
    """
    tree = ast.parse(open(path, encoding="utf-8").read())
    if depth is None:
        depth = os.path.relpath(path, PACKAGE).count(os.sep)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "ride_dive" and len(parts) > 1:
                    found.append((parts[1], node.lineno))
                elif parts[0] == "ride_dive":
                    found += [(a.name, node.lineno) for a in node.names]
            elif node.level > depth:  # ``from .. import x`` / ``from ..x import y``
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                found += [(n, node.lineno) for n in names]
            else:
                found.append((package, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "ride_dive" and len(parts) > 1:
                    found.append((parts[1], node.lineno))
    return found


def _violations():
    out = []
    for package in sorted(LAYER_OF):
        root = os.path.join(PACKAGE, package)
        for folder, _, files in os.walk(root):
            for file in sorted(files):
                if not file.endswith(".py"):
                    continue
                path = os.path.join(folder, file)
                for imported, line in _imported_packages(path, package):
                    if imported == package or imported not in LAYER_OF:
                        continue
                    if LAYER_OF[imported] >= LAYER_OF[package]:
                        out.append(f"{os.path.relpath(path, ROOT)}:{line} imports {imported}")
    return out


def test_every_package_is_in_a_layer():
    packages = {
        d for d in os.listdir(PACKAGE) if os.path.isfile(os.path.join(PACKAGE, d, "__init__.py"))
    }
    assert packages == set(LAYER_OF)


def test_no_package_imports_its_own_layer_or_a_higher_one():
    assert _violations() == []


def test_the_check_sees_relative_and_absolute_imports(tmp_path):
    probe = tmp_path / "probe.py"  # as if it were ride_dive/checkpoint/probe.py
    probe.write_text(
        "from ..model_zoo import x\nimport ride_dive.engine\nfrom . import y\n"
        "from ride_dive.utils.comm import z\n"
    )
    found = sorted(_imported_packages(str(probe), "checkpoint", depth=1), key=lambda f: f[1])
    assert found == [("model_zoo", 1), ("engine", 2), ("checkpoint", 3), ("utils", 4)]


def test_benchmark_and_publishing_code_is_not_installed():
    for gone in ("engine/speed.py", "engine/accuracy_suite.py", "model_zoo/publish.py"):
        assert not os.path.exists(os.path.join(PACKAGE, gone)), gone
