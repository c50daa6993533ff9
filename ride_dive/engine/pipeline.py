"""Multi-stage runs from one file: teacher -> student -> router, each stage wired to the next.

A pipeline file is YAML with a single top-level ``PIPELINE`` section::

    PIPELINE:
      NAME: "RIDE-DiVE"
      OUTPUT_DIR: "output/fmnist_lt/ride_dive_pipeline"
      OPTS: []                          # KEY VALUE overrides for every stage
      STAGES:
        - NAME: "teacher"
          CONFIG: "ride_6e_bsce_r32.yaml"     # relative to the pipeline file
          LABEL: "RIDE 6E BSCE teacher"       # row name in the summary (optional)
        - NAME: "student"
          CONFIG: "ride_dive_4e_r32.yaml"
          TEACHER: "teacher"                  # MODEL.TEACHER.* <- that stage's config + weights
        - NAME: "router"
          CONFIG: "ride_dive_4e_r32_router.yaml"
          WEIGHTS: "student"                  # MODEL.WEIGHTS <- that stage's model_final.pth
          OPTS: []                            # overrides for this stage only
        - NAME: "ncm"
          CONFIG: "ncm_r32.yaml"
          WEIGHTS: "teacher"
          KIND: "eval"                        # evaluate WEIGHTS only (NCM); "tau_norm":
                                              # the same with TEST.TAU_NORM_SWEEP True

A stage is one of two things: a training run (``DefaultTrainer``: ``resume_or_load`` then
``train``) in ``OUTPUT_DIR/<NAME>``, or with ``KIND: eval`` an evaluation of ``WEIGHTS``
(``resume_or_load(resume=False)`` then ``test``, what ``--eval-only`` does). ``KIND:
tau_norm`` is an eval stage with ``TEST.TAU_NORM_SWEEP True`` (the tau-norm evaluator, tau
chosen on validation); its row shows the chosen tau's test numbers. A stage whose
``results.json`` exists is finished and skipped; one with a checkpoint resumes exactly; the
others start fresh. Command-line overrides apply to every stage (after the
file's ``OPTS``), except ``OUTPUT_DIR``, which moves the whole pipeline. At the end a table
compares the stages on top-1 / many / medium / few, experts per image and GMACs per image
(``summary.md`` and ``summary.json`` in the pipeline's folder).

The stages run one after the other in this process. At each stage's start a line gives the
pipeline's remaining time, an estimate: the training iterations left (this stage's, then
each later training stage's epochs x iterations per epoch, the latter from its config with
this stage's images per epoch) at the seconds per iteration measured on the stages trained
so far; later stages may run at another speed (a router stage trains a small part of the
model), and evaluation stages are not counted. While a stage trains, its console lines add
``(all: about H:MM:SS)``, the same count at the running stage's speed.
"""

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..checkpoint import atomic_write_text
from ..config import ConfigError
from ..config.yaml_file import read_yaml
from ..solver import effective_batch_size
from ..utils import comm
from ..utils.events import set_pipeline_progress
from ..utils.run_dir import RunDir
from .pipeline_clock import PipelineClock

__all__ = [
    "PipelineStage",
    "Pipeline",
    "is_pipeline_file",
    "load_pipeline",
    "run_pipeline",
    "format_summary",
]

logger = logging.getLogger("ride_dive")

_PIPELINE_KEYS = {"NAME", "OUTPUT_DIR", "OPTS", "STAGES"}
_STAGE_KEYS = {"NAME", "CONFIG", "LABEL", "TEACHER", "WEIGHTS", "OPTS", "KIND"}
STAGE_KINDS = ("train", "eval", "tau_norm")
# What a stage kind adds to its config: tau_norm is an evaluation with the tau-norm sweep.
_KIND_OPTS = {"train": [], "eval": [], "tau_norm": ["TEST.TAU_NORM_SWEEP", "True"]}


@dataclass
class PipelineStage:
    """One stage: a config file plus where its teacher / initial weights come from."""

    name: str
    config: str
    label: str
    teacher: Optional[str] = None
    weights: Optional[str] = None
    opts: List[str] = field(default_factory=list)
    kind: str = "train"

    @property
    def trains(self) -> bool:
        """Whether the stage trains (else it evaluates ``WEIGHTS``)."""
        return self.kind == "train"


@dataclass
class Pipeline:
    """A parsed pipeline file."""

    name: str
    output_dir: str
    stages: List[PipelineStage]
    opts: List[str] = field(default_factory=list)


def is_pipeline_file(path: str) -> bool:
    """Whether ``path`` is a pipeline file (a YAML whose top level is ``PIPELINE``)."""
    if not path or not os.path.isfile(path):
        return False
    data = read_yaml(path)
    return isinstance(data, dict) and "PIPELINE" in data


def _opts(value, where: str) -> List[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) % 2:
        raise ConfigError(f"{where} must be a list of KEY VALUE pairs, got {value!r}")
    return [str(v) for v in value]


def _unknown(keys, valid, where: str) -> None:
    extra = sorted(set(keys) - valid)
    if extra:
        raise ConfigError(f"Unknown key(s) {extra} in {where}; valid keys: {sorted(valid)}")


def load_pipeline(path: str) -> Pipeline:
    """Parse and check a pipeline file (stage names, config files, references).

    Raises:
        ConfigError: naming the file and the problem.
    """
    data = read_yaml(path)
    spec = data.get("PIPELINE") if isinstance(data, dict) else None
    if not isinstance(spec, dict) or set(data) != {"PIPELINE"}:
        raise ConfigError(f"{path}: a pipeline file has exactly one top-level key, PIPELINE")
    _unknown(spec, _PIPELINE_KEYS, f"{path}: PIPELINE")
    stages_spec = spec.get("STAGES")
    if not isinstance(stages_spec, list) or not stages_spec:
        raise ConfigError(f"{path}: PIPELINE.STAGES must be a non-empty list of stages")
    if not spec.get("OUTPUT_DIR"):
        raise ConfigError(f"{path}: PIPELINE.OUTPUT_DIR is required")
    here = os.path.dirname(os.path.abspath(path))
    stages: List[PipelineStage] = []
    for i, s in enumerate(stages_spec):
        where = f"{path}: PIPELINE.STAGES[{i}]"
        if not isinstance(s, dict):
            raise ConfigError(f"{where} must be a mapping with NAME and CONFIG")
        _unknown(s, _STAGE_KEYS, where)
        name, config = s.get("NAME"), s.get("CONFIG")
        if not name or not config:
            raise ConfigError(f"{where} needs NAME and CONFIG")
        if not str(name).replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{where}: NAME '{name}' must be letters, digits, '-' or '_'")
        if any(st.name == name for st in stages):
            raise ConfigError(f"{where}: duplicate stage NAME '{name}'")
        config_path = config if os.path.isabs(config) else os.path.join(here, config)
        if not os.path.isfile(config_path):
            raise ConfigError(f"{where}: CONFIG file not found: {config_path}")
        for ref_key in ("TEACHER", "WEIGHTS"):
            ref = s.get(ref_key)
            if ref is not None and not any(st.name == ref for st in stages):
                raise ConfigError(
                    f"{where}: {ref_key} '{ref}' must name an earlier stage; earlier stages: "
                    f"{[st.name for st in stages]}"
                )
        kind = str(s.get("KIND") or "train")
        if kind not in STAGE_KINDS:
            raise ConfigError(f"{where}: KIND '{kind}' must be one of {list(STAGE_KINDS)}")
        if kind != "train" and not s.get("WEIGHTS"):
            raise ConfigError(
                f"{where}: a '{kind}' stage needs WEIGHTS (the stage whose model it evaluates)"
            )
        stages.append(
            PipelineStage(
                name=str(name),
                config=config_path,
                label=str(s.get("LABEL") or name),
                teacher=s.get("TEACHER"),
                weights=s.get("WEIGHTS"),
                opts=_opts(s.get("OPTS"), f"{where}.OPTS"),
                kind=kind,
            )
        )
    return Pipeline(
        name=str(spec.get("NAME") or os.path.basename(path)),
        output_dir=str(spec["OUTPUT_DIR"]),
        stages=stages,
        opts=_opts(spec.get("OPTS"), f"{path}: PIPELINE.OPTS"),
    )


def _split_output_dir(opts: Sequence[str]):
    """``(OUTPUT_DIR override or None, the other overrides)``."""
    rest, output_dir = [], None
    pairs = list(zip(opts[0::2], opts[1::2]))
    if len(opts) % 2:
        raise ConfigError(f"Overrides must come in KEY VALUE pairs; got {list(opts)}")
    for key, value in pairs:
        if key == "OUTPUT_DIR":
            output_dir = value
        else:
            rest += [key, value]
    return output_dir, rest


def stage_dirs(pipeline: Pipeline, output_dir: Optional[str] = None) -> Dict[str, str]:
    """Each stage's output folder."""
    root = output_dir or pipeline.output_dir
    return {s.name: os.path.join(root, s.name) for s in pipeline.stages}


def _stage_opts(pipeline, stage, dirs, cli_opts) -> List[str]:
    opts = _KIND_OPTS[stage.kind] + list(pipeline.opts) + list(stage.opts) + list(cli_opts)
    if stage.teacher:
        teacher = RunDir(dirs[stage.teacher])
        opts += [
            "MODEL.TEACHER.CONFIG_FILE",
            teacher.config,
            "MODEL.TEACHER.WEIGHTS",
            teacher.final_model,
        ]
    if stage.weights:
        opts += ["MODEL.WEIGHTS", RunDir(dirs[stage.weights]).final_model]
    return opts + ["OUTPUT_DIR", dirs[stage.name]]


def run_pipeline(path: str, opts: Sequence[str] = ()) -> Dict:
    """Run (or finish) every stage of the pipeline file in order; return the summary.

    Args:
        path: the pipeline file.
        opts: command-line ``KEY VALUE`` overrides (``OUTPUT_DIR`` moves the pipeline).
    """
    from .defaults import default_setup, setup_cfg

    pipeline = load_pipeline(path)
    output_dir, cli_opts = _split_output_dir(list(opts))
    dirs = stage_dirs(pipeline, output_dir)
    root = output_dir or pipeline.output_dir
    stage_results: Dict[str, Dict] = {}
    progress = PipelineClock(pipeline, _planned_stages(pipeline, dirs, cli_opts))
    try:
        for i, stage in enumerate(pipeline.stages):
            results_path = RunDir(dirs[stage.name]).results
            banner = f"[{pipeline.name}] stage {i + 1}/{len(pipeline.stages)} '{stage.name}'"
            if os.path.isfile(results_path):
                logger.info(f"{banner}: finished before ({results_path}); skipped")
                with open(results_path) as f:
                    stage_results[stage.name] = stage_metrics(stage, json.load(f))
                continue
            cfg = setup_cfg(stage.config, _stage_opts(pipeline, stage, dirs, cli_opts))
            default_setup(cfg)
            logger.info(f"{banner}: {stage.config} -> {cfg.OUTPUT_DIR}")
            stage_results[stage.name] = stage_metrics(stage, _run_stage(stage, cfg, progress, i))
    finally:
        set_pipeline_progress(None)
    summary = {
        "pipeline": pipeline.name,
        "output_dir": root,
        # What the command line changed in every stage: a file named for one setting (e.g.
        # "IF 100") run with another (DATASETS.IMBALANCE_FACTOR 10) says so in its table.
        "overrides": list(cli_opts),
        "rows": summary_rows(pipeline, stage_results),
    }
    if comm.is_main_process():
        table = format_summary(summary)
        atomic_write_text(os.path.join(root, "summary.md"), table + "\n")
        atomic_write_text(os.path.join(root, "summary.json"), json.dumps(summary, indent=2))
        print(table, flush=True)
    return summary


def _planned_stages(pipeline: Pipeline, dirs, cli_opts) -> Dict[str, Optional[Tuple[int, int]]]:
    """``{name: (epochs, batch size)}`` of each training stage not finished yet; None where
    its config does not load yet (the error comes when the stage runs)."""
    from .defaults import setup_cfg

    planned: Dict[str, Optional[Tuple[int, int]]] = {}
    for stage in pipeline.stages:
        if not stage.trains or os.path.isfile(RunDir(dirs[stage.name]).results):
            continue
        try:
            cfg = setup_cfg(stage.config, _stage_opts(pipeline, stage, dirs, cli_opts))
        except Exception:  # only an estimate: the stage itself reports the problem
            planned[stage.name] = None
            continue
        planned[stage.name] = (int(cfg.SOLVER.MAX_EPOCHS), int(cfg.SOLVER.BATCH_SIZE))
    return planned


def _run_stage(
    stage: PipelineStage, cfg, progress: Optional[PipelineClock] = None, index: int = 0
) -> Dict:
    """Train (resuming an interrupted run) or evaluate ``WEIGHTS``, by ``stage.kind``; with
    ``progress``, log the pipeline's remaining time (stage ``index``) and measure the
    stage's."""
    from .defaults import DefaultTrainer

    started = progress.clock() if progress is not None else 0.0
    trainer = DefaultTrainer(cfg)
    loop = trainer.trainer
    images_per_epoch = loop.iters_per_epoch * effective_batch_size(cfg)
    if not stage.trains:
        if progress is not None:
            logger.info(progress.start(index, 0, images_per_epoch))
        trainer.resume_or_load(resume=False, training=False)
        return trainer.test()
    # resume=True: an interrupted stage continues from its last checkpoint; a new one
    # starts from MODEL.WEIGHTS (the previous stage's model, where wired).
    trainer.resume_or_load(resume=True)
    iters = max(loop.max_iter - trainer.start_epoch * loop.iters_per_epoch, 0)
    if progress is not None:
        logger.info(progress.start(index, iters, images_per_epoch))
    results = trainer.train()
    if progress is not None:
        progress.finished(stage, progress.clock() - started, iters)
    return results


def stage_metrics(stage: PipelineStage, report: Dict) -> Dict:
    """A stage's test metrics: its ``results.json``; for a tau-norm stage, the chosen tau's
    test numbers (with ``selected_on``)."""
    tau_norm = report.get("tau_norm")
    if stage.kind == "tau_norm" and tau_norm is not None:
        return dict(tau_norm["test"], selected_on=tau_norm["selected_on"])
    return report


def summary_rows(pipeline: Pipeline, stage_results: Dict[str, Dict]) -> List[Dict]:
    """One row per stage; a router stage's label names the threshold it ran at."""
    rows = []
    for stage in pipeline.stages:
        r = stage_results.get(stage.name)
        if r is None:
            continue
        row = {"stage": stage.name, "label": stage.label}
        for key in ("top1", "many", "medium", "few", "experts_used_mean", "gmacs"):
            if key in r:
                row[key] = r[key]
        router = r.get("router")
        if router is not None and "threshold" in router:
            row["threshold"] = router["threshold"]
            row["label"] = f"{stage.label} (threshold {router['threshold']:g})"
        rows.append(row)
    return rows


def _cell(value, fmt="{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def format_summary(summary: Dict) -> str:
    """The stage comparison as a Markdown table."""
    overrides = " ".join(summary.get("overrides") or [])
    lines = [
        f"{summary['pipeline']}"
        + (f" with {overrides}" if overrides else "")
        + f" ({summary['output_dir']}), test split",
        "",
        "| stage | top1 | many | medium | few | experts/image | GMACs/image |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        lines.append(
            f"| {row['label']} | {_cell(row.get('top1'))} | {_cell(row.get('many'))} | "
            f"{_cell(row.get('medium'))} | {_cell(row.get('few'))} | "
            f"{_cell(row.get('experts_used_mean'))} | {_cell(row.get('gmacs'), '{:.4f}')} |"
        )
    return "\n".join(lines)
