"""docs/ARCHITECTURE.md's worked example: a new loss and a new evaluator, each one file
outside the package, plus a config, run through tools/train_net.py without touching the
engine."""

import json
import os
import subprocess
import sys

import pytest

from ride_dive.config import ConfigError
from ride_dive.utils.plugins import import_plugins
from tests.conftest import ROOT, tiny_overrides

EXAMPLE = os.path.join(ROOT, "docs", "examples", "label_smoothing")
LOSS_FILE = os.path.join(EXAMPLE, "label_smoothing_loss.py")
EVALUATOR_FILE = os.path.join(EXAMPLE, "worst_class_evaluator.py")


# Registering the example's classes would change the registries every other test sees
# ("no registry mutation in tests"), so whatever imports the plugins runs in a subprocess.
_LOSS_CHECK = f"""
import torch, torch.nn.functional as F
from ride_dive.utils.plugins import import_plugins
from ride_dive.modeling import LOSS_REGISTRY
module, = import_plugins([{LOSS_FILE!r}])
assert import_plugins([{LOSS_FILE!r}])[0] is module  # a second import registers nothing
loss_cls = LOSS_REGISTRY.get("LabelSmoothingLoss")
torch.manual_seed(0)
logits, targets = torch.randn(16, 5), torch.randint(0, 5, (16,))
for eps in (0.0, 0.1, 0.4):
    loss = loss_cls(smoothing=eps)(logits, targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets, label_smoothing=eps))
# DRW weights per sample: sum_i w_(y_i) l_i / sum_i w_(y_i).
drw = loss_cls(class_counts=[50, 20, 10, 5, 2], drw_epoch=0, smoothing=0.2)
plain = loss_cls(smoothing=0.2)
w = drw.drw_class_weights[targets]
manual = sum(w[i] * plain(logits[i:i + 1], targets[i:i + 1]) for i in range(16))
torch.testing.assert_close(drw(logits, targets), manual / w.sum())
try:
    loss_cls(smoothing=1.0)
except ValueError:
    print("ok")
"""


def test_the_loss_is_label_smoothing():
    r = subprocess.run(
        [sys.executable, "-c", _LOSS_CHECK], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_a_missing_plugin_is_a_clear_error():
    with pytest.raises(ConfigError, match="no such file"):
        import_plugins([os.path.join(EXAMPLE, "missing.py")])
    with pytest.raises(ConfigError, match="no module named"):
        import_plugins(["ride_dive_no_such_plugin"])


def _train_net(out, *extra):
    return subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "train_net.py"),
            "--plugin",
            LOSS_FILE,
            "--plugin",
            EVALUATOR_FILE,
            "--config-file",
            os.path.join(EXAMPLE, "label_smoothing_r32.yaml"),
            *tiny_overrides(out, **{"SOLVER.MAX_EPOCHS": 1, "SOLVER.WARMUP_EPOCHS": 0}),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def test_the_example_config_trains_and_reports_through_train_net(tmp_path):
    r = _train_net(tmp_path / "run")
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.load(open(tmp_path / "run" / "results.json"))
    scored = [(a, c) for c, a in enumerate(results["per_class"]) if a is not None]
    assert results["worst_class"] == {"class": min(scored)[1], "top1": min(scored)[0]}
    config = open(tmp_path / "run" / "config.yaml").read()
    assert "LabelSmoothingLoss" in config and "WorstClassAccuracy" in config
    # Without the plugin the names are unknown: a clear error, exit status 2.
    r = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "train_net.py"),
            "--config-file",
            os.path.join(EXAMPLE, "label_smoothing_r32.yaml"),
            *tiny_overrides(tmp_path / "no_plugin"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "LabelSmoothingLoss" in r.stderr
    assert "Traceback" not in r.stderr
