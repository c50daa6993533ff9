"""Multi-stage pipelines: wiring, skipping finished stages, resuming, the summary, errors."""

import json
import os

import pytest
import yaml

from ride_dive.config import ConfigError
from ride_dive.engine.pipeline import is_pipeline_file, load_pipeline, run_pipeline
from tests.conftest import RIDE_OVERRIDES, tiny_overrides

RIDE = RIDE_OVERRIDES


def _config_file(path, **overrides):
    """A YAML config file holding the tiny synthetic-data settings plus ``overrides``."""
    flat = tiny_overrides(
        "unused", **{"SOLVER.MAX_EPOCHS": 1, "SOLVER.WARMUP_EPOCHS": 0, **overrides}
    )
    nested = {}
    for key, value in zip(flat[0::2], flat[1::2]):
        if key == "OUTPUT_DIR":
            continue
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value) if not value.startswith("'") else value[1:-1]
    path.write_text(yaml.safe_dump(nested))
    return path.name


def _ride_dive_pipeline(tmp_path):
    teacher = _config_file(tmp_path / "teacher.yaml", **RIDE, **{"MODEL.RIDE.NUM_EXPERTS": 3})
    student = _config_file(
        tmp_path / "student.yaml",
        **{**RIDE, "MODEL.RIDE.NUM_EXPERTS": 2, "MODEL.LOSS.RIDE.BASE_LOSS": "DiVELoss"},
    )
    router = _config_file(
        tmp_path / "router.yaml",
        **{
            **RIDE,
            "MODEL.RIDE.NUM_EXPERTS": 2,
            "MODEL.LOSS.RIDE.BASE_LOSS": "DiVELoss",
            "MODEL.ROUTER.ENABLED": True,
            "MODEL.ROUTER.TRAIN": True,
            "DATALOADER.SAMPLER": "ClassAwareSampler",
            "TEST.ROUTER_THRESHOLDS": [0.0, 0.5, 1.0],
        },
    )
    spec = {
        "PIPELINE": {
            "NAME": "tiny RIDE-DiVE",
            "OUTPUT_DIR": str(tmp_path / "default_out"),
            "OPTS": ["SEED", "3"],
            "STAGES": [
                {"NAME": "teacher", "CONFIG": teacher},
                {"NAME": "student", "CONFIG": student, "TEACHER": "teacher", "LABEL": "student"},
                {"NAME": "router", "CONFIG": router, "WEIGHTS": "student"},
            ],
        }
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def test_ride_dive_pipeline_wires_stages_skips_and_resumes(tmp_path, capsys):
    path = _ride_dive_pipeline(tmp_path)
    assert is_pipeline_file(path) and not is_pipeline_file(str(tmp_path / "teacher.yaml"))
    out = tmp_path / "run"
    summary = run_pipeline(path, ["OUTPUT_DIR", str(out), "SOLVER.BATCH_SIZE", "16"])
    # Each stage in its own folder; the file's and the command line's overrides reach all.
    for stage in ("teacher", "student", "router"):
        saved = yaml.safe_load(open(out / stage / "config.yaml"))
        assert saved["OUTPUT_DIR"] == str(out / stage)
        assert saved["SEED"] == 3 and saved["SOLVER"]["BATCH_SIZE"] == 16
    student = yaml.safe_load(open(out / "student" / "config.yaml"))
    assert student["MODEL"]["TEACHER"]["WEIGHTS"] == str(out / "teacher" / "model_final.pth")
    assert student["MODEL"]["TEACHER"]["CONFIG_FILE"] == str(out / "teacher" / "config.yaml")
    router = yaml.safe_load(open(out / "router" / "config.yaml"))
    assert router["MODEL"]["WEIGHTS"] == str(out / "student" / "model_final.pth")
    assert not (tmp_path / "default_out").exists()

    rows = {row["stage"]: row for row in summary["rows"]}
    assert list(rows) == ["teacher", "student", "router"]
    student_results = json.load(open(out / "student" / "results.json"))
    assert rows["student"]["top1"] == student_results["top1"]
    assert rows["teacher"]["experts_used_mean"] == 3.0
    assert rows["router"]["gmacs"] <= rows["student"]["gmacs"] < rows["teacher"]["gmacs"]
    table = (out / "summary.md").read_text()
    assert "| student |" in table and "threshold 0.5" in table
    assert json.load(open(out / "summary.json"))["rows"] == summary["rows"]

    # Re-running skips every finished stage (nothing is trained again)...
    stamps = {s: os.path.getmtime(out / s / "model_final.pth") for s in rows}
    again = run_pipeline(path, ["OUTPUT_DIR", str(out), "SOLVER.BATCH_SIZE", "16"])
    assert again["rows"] == summary["rows"]
    assert stamps == {s: os.path.getmtime(out / s / "model_final.pth") for s in rows}
    # ...and an interrupted stage (checkpoints, no results) continues from its checkpoint.
    os.remove(out / "router" / "results.json")
    capsys.readouterr()
    resumed = run_pipeline(path, ["OUTPUT_DIR", str(out), "SOLVER.BATCH_SIZE", "16"])
    assert "Training already finished" in (out / "router" / "log.txt").read_text()
    assert resumed["rows"][2]["top1"] == summary["rows"][2]["top1"]


@pytest.mark.parametrize(
    "stages,message",
    [
        ([{"NAME": "a", "CONFIG": "missing.yaml"}], "CONFIG file not found"),
        ([{"NAME": "a", "CONFIG": "c.yaml", "TEACHER": "b"}], "must name an earlier stage"),
        ([{"NAME": "a", "CONFIG": "c.yaml", "TEACHR": "a"}], "Unknown key"),
        ([{"NAME": "a", "CONFIG": "c.yaml"}, {"NAME": "a", "CONFIG": "c.yaml"}], "duplicate"),
        ([], "non-empty list"),
    ],
)
def test_bad_pipeline_files_name_the_problem(tmp_path, stages, message):
    (tmp_path / "c.yaml").write_text("SEED: 1\n")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"PIPELINE": {"OUTPUT_DIR": "x", "STAGES": stages}}))
    with pytest.raises(ConfigError, match=message):
        load_pipeline(str(path))
