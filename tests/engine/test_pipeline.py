"""Multi-stage pipelines: wiring, skipping finished stages, resuming, the summary, errors."""

import json
import os

import pytest
import yaml

from ride_dive.config import ConfigError
from ride_dive.engine.pipeline import (
    Pipeline,
    PipelineStage,
    is_pipeline_file,
    load_pipeline,
    run_pipeline,
)
from ride_dive.engine.pipeline_clock import PipelineClock
from ride_dive.utils.events import PipelineProgress, get_pipeline_progress, set_pipeline_progress
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
    # The header says what the command line changed (not the moved OUTPUT_DIR).
    assert table.startswith(f"tiny RIDE-DiVE with SOLVER.BATCH_SIZE 16 ({out}), test split")
    assert summary["overrides"] == ["SOLVER.BATCH_SIZE", "16"]
    assert json.load(open(out / "summary.json"))["rows"] == summary["rows"]
    # Each stage's start says how much is left in all; from stage 2 on, as a time.
    teacher_log = (out / "teacher" / "log.txt").read_text()
    assert "[tiny RIDE-DiVE] stage 1/3 (teacher): " in teacher_log
    assert "training iterations left in all stages" in teacher_log
    student_log = (out / "student" / "log.txt").read_text()
    assert "[tiny RIDE-DiVE] stage 2/3 (student): about " in student_log
    assert "s/iteration measured on teacher; other stages may run at another speed" in student_log
    assert get_pipeline_progress() is None

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


# --- The pipeline's remaining time ----------------------------------------------------------


def _three_stage_pipeline():
    stages = [
        PipelineStage("teacher", "t.yaml", "teacher"),
        PipelineStage("student", "s.yaml", "student", teacher="teacher"),
        PipelineStage("router", "r.yaml", "router", weights="student"),
        PipelineStage("ncm", "n.yaml", "ncm", weights="teacher", kind="eval"),
    ]
    return Pipeline("P", "out", stages)


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_pipeline_clock_counts_later_stages_and_estimates_from_finished_ones():
    pipeline = _three_stage_pipeline()
    # Epochs and batch size of the stages to train (ncm only evaluates).
    planned = {"teacher": (10, 100), "student": (20, 50), "router": (5, 200)}
    clock = _Clock()
    progress = PipelineClock(pipeline, planned, clock=clock)
    try:
        # 1000 images per epoch: student 20 x 20 iterations, router 5 x 5.
        assert progress.later_iters(0, 1000) == (425, 0)
        assert progress.later_iters(1, 1000) == (25, 0)
        assert progress.later_iters(2, 1000) == (0, 0)
        line = progress.start(0, 100, 1000)
        assert line == (
            "[P] stage 1/4 (teacher): 525 training iterations left in all stages; the time "
            "left shows in the training lines' eta, (all ~...), once measured"
        )
        assert get_pipeline_progress() == PipelineProgress(1, 4, "teacher", 425)
        progress.finished(pipeline.stages[0], 200.0, 100)  # 2 s per iteration
        line = progress.start(1, 400, 1000)
        assert line == (
            "[P] stage 2/4 (student): about 14 min left in all stages (an estimate: 425 "
            "training iterations at the 2 s/iteration measured on teacher; other stages may "
            "run at another speed)"
        )
        assert get_pipeline_progress().later_iters == 25
        progress.finished(pipeline.stages[1], 200.0, 400)  # (200 + 200) s / 500 iterations
        assert progress.start(2, 25, 1000).startswith(
            "[P] stage 3/4 (router): about 20 s left in all stages (an estimate: 25 training "
            "iterations at the 0.8 s/iteration measured on teacher, student;"
        )
        progress.finished(pipeline.stages[2], 0.0, 0)  # nothing trained: no measurement
        assert progress.measured_on == ["teacher", "student"]
        assert progress.start(3, 0, 1000) == "[P] stage 4/4 (ncm): no training left in the pipeline"
    finally:
        set_pipeline_progress(None)


def test_pipeline_clock_names_the_stages_it_cannot_size():
    pipeline = _three_stage_pipeline()
    # student's config does not load yet; router finished before (not planned).
    progress = PipelineClock(pipeline, {"teacher": (10, 100), "student": None})
    try:
        assert progress.later_iters(0, 1000) == (0, 1)
        assert progress.start(0, 100, 1000) == (
            "[P] stage 1/4 (teacher): 100 training iterations left in all stages; 1 later "
            "stage(s) of unknown size not counted; the time left shows in the training lines' "
            "eta, (all ~...), once measured"
        )
    finally:
        set_pipeline_progress(None)


def test_a_key_given_twice_in_a_pipeline_file_is_refused_with_its_lines(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("PIPELINE:\n  OUTPUT_DIR: x\n  OUTPUT_DIR: y\n  STAGES: []\n")
    with pytest.raises(ConfigError, match=r"p.yaml:3: the key 'OUTPUT_DIR' is given twice"):
        load_pipeline(str(path))


def test_an_eval_stage_loads_its_weights_as_an_evaluation(monkeypatch):
    """--eval-only's loading (training=False): routers the file lacks are an error there."""
    from ride_dive.engine import defaults, pipeline

    calls = []

    class _Trainer:
        def __init__(self, cfg):
            self.trainer = type("Loop", (), {"iters_per_epoch": 1})()

        def resume_or_load(self, resume=True, training=True):
            calls.append((resume, training))

        def test(self):
            return {"top1": 1.0}

    monkeypatch.setattr(defaults, "DefaultTrainer", _Trainer)
    cfg = type("Cfg", (), {"SOLVER": type("S", (), {"BATCH_SIZE": 2, "ACCUMULATE_STEPS": 1})()})()
    stage = PipelineStage("ncm", "n.yaml", "ncm", weights="teacher", kind="eval")
    assert pipeline._run_stage(stage, cfg) == {"top1": 1.0}
    assert calls == [(False, False)]
