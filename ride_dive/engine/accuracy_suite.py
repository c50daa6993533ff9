"""The accuracy suite of ``tools/benchmark.py accuracy``: every method, several seeds, one table.

A suite is a pipeline file (``configs/<dataset>/benchmark_suite.yaml``) whose stages are the
methods, wired to each other (DiVE to its BSCE teacher, cRT/LWS/tau-norm/NCM to the CE
model, ...). ``run_suite`` runs that pipeline once per (imbalance factor, seed) in
``<root>/if<IF>/s<seed>`` (``<root>/s<seed>`` for datasets with a fixed imbalance);
finished stages are skipped and interrupted ones resumed, so the command can be re-run
until everything is done. ``suite_table`` then reads every stage's results and gives the
mean ± std over seeds of top-1 / many / medium / few, the MACs per image and the training
time, beside the published numbers of METHODS.md section 9 where there are any.
"""
import glob
import json
import os
import re
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .pipeline import load_pipeline, run_pipeline, stage_dirs, stage_metrics

__all__ = ["Suite", "SUITES", "run_suite", "suite_table", "training_seconds",
           "replace_section"]

_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "configs")


@dataclass
class Suite:
    """A benchmark suite: its pipeline file, imbalance factors and published top-1."""

    title: str
    pipeline: str
    imbalance_factors: Sequence[Optional[float]] = (None,)
    # published[stage][imbalance factor] = "top-1 (many / medium / few)" text, METHODS.md 9
    published: Dict[str, Dict[Optional[float], str]] = field(default_factory=dict)


SUITES: Dict[str, Suite] = {
    "fashion-mnist-lt": Suite(
        "Fashion-MNIST-LT", os.path.join(_CONFIGS, "FashionMNIST-LT", "benchmark_suite.yaml"),
        (100.0, 10.0)),
    "cifar100-lt": Suite(
        "CIFAR-100-LT", os.path.join(_CONFIGS, "CIFAR100-LT", "benchmark_suite.yaml"),
        (100.0, 50.0, 10.0), {
            "ce": {100.0: "38.35", 50.0: "42.41", 10.0: "56.51"},
            "bsce": {100.0: "42.39", 50.0: "47.60", 10.0: "58.38"},
            "dive": {100.0: "45.35", 50.0: "51.13", 10.0: "62.00"},
            "ride_3e": {100.0: "48.6"},
            "ride_4e": {100.0: "49.4 (4E + KD)"},
            "ride_6e_bsce": {100.0: "51.07"},
            "ride_dive": {100.0: "51.66"},
        }),
    "cifar10-lt": Suite(
        "CIFAR-10-LT", os.path.join(_CONFIGS, "CIFAR10-LT", "benchmark_suite.yaml"),
        (100.0,), {
            "ce": {100.0: "70.4 (third-party)"},
            "bsce": {100.0: "77.5 (third-party)"},
            "dive": {100.0: "78.9 (third-party)"},
        }),
    "imagenet-lt": Suite(
        "ImageNet-LT", os.path.join(_CONFIGS, "ImageNet-LT", "benchmark_suite.yaml"),
        (None,), {
            "ce": {None: "44.4 (65.9 / 37.5 / 7.7)"},
            "crt": {None: "49.6"},
            "tau_norm": {None: "49.4"},
            "lws": {None: "49.9"},
            "bsce": {None: "50.48"},
            "dive": {None: "53.10 (64.06 / 50.41 / 31.46)"},
            "ride_4e": {None: "56.8 (4E + KD)"},
            "ride_dive": {None: "57.12"},
        }),
    "inat18": Suite(
        "iNaturalist 2018", os.path.join(_CONFIGS, "iNat18", "benchmark_suite.yaml"),
        (None,), {
            "ce": {None: "62.60"},
            "bsce": {None: "65.35"},
            "dive": {None: "69.13"},
            "ride_4e": {None: "72.6 (4E + KD)"},
            "ride_dive": {None: "73.44"},
        }),
}


def _if_dir(root: str, imbalance: Optional[float]) -> str:
    return root if imbalance is None else os.path.join(root, f"if{imbalance:g}")


def run_dir(root: str, imbalance: Optional[float], seed: int) -> str:
    """Where the pipeline of one (imbalance factor, seed) writes its stages."""
    return os.path.join(_if_dir(root, imbalance), f"s{seed}")


def run_suite(suite: Suite, root: str, seeds: Sequence[int],
              imbalance_factors: Optional[Sequence[Optional[float]]] = None,
              opts: Sequence[str] = ()) -> None:
    """Run (or finish) the suite's pipeline for every imbalance factor and seed.

    Args:
        suite: the suite.
        root: output root (``<root>/if<IF>/s<seed>/<stage>``).
        seeds: the seeds.
        imbalance_factors: a subset of the suite's (default: all of them).
        opts: extra ``KEY VALUE`` overrides for every stage (e.g. ``MODEL.DEVICE cpu``).
    """
    for imbalance in imbalance_factors or suite.imbalance_factors:
        for seed in seeds:
            run_opts = list(opts) + ["SEED", str(seed)]
            if imbalance is not None:
                run_opts += ["DATASETS.IMBALANCE_FACTOR", str(imbalance)]
            run_pipeline(suite.pipeline, run_opts + ["OUTPUT_DIR", run_dir(root, imbalance,
                                                                             seed)])


def training_seconds(stage_dir: str) -> Optional[float]:
    """Wall time of the stage's training from its ``log.txt`` (summed over resumptions)."""
    path = os.path.join(stage_dir, "log.txt")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        times = [float(m.group(1)) for m in re.finditer(r"Training time: ([0-9.]+) s", f.read())]
    return sum(times) if times else None


def _mean_std(values: List[float], digits: int = 2) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _stage_results(stage, stage_dir: str) -> Optional[Dict]:
    path = os.path.join(stage_dir, stage.result_file)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        results = stage_metrics(stage, json.load(f))
    if "gmacs" not in results:  # runs older than the gmacs entry, tau-norm reports
        results["gmacs"] = _gmacs_of(stage, stage_dir)
    return results


def _gmacs_of(stage, stage_dir: str) -> Optional[float]:
    """GMACs per image of the stage's model, counted from its config (no weights needed)."""
    from ..data import build_datasets
    from ..modeling import build_model
    from .defaults import setup_cfg
    from .evaluation import inference_gmacs

    config = os.path.join(stage_dir, "config.yaml")
    if not os.path.isfile(config):
        config = stage.config  # tau-norm reports: the stage-1 model's config
    cfg = setup_cfg(config, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    counts = build_datasets(cfg).class_counts  # the number of classes sizes the head
    return inference_gmacs(cfg, build_model(cfg, counts))


def suite_table(suite: Suite, root: str, imbalance: Optional[float],
                seeds: Optional[Sequence[int]] = None) -> str:
    """Markdown table of one imbalance factor: mean ± std over the finished seeds.

    Args:
        seeds: the seeds to include; None = every ``s<seed>`` folder found.
    """
    pipeline = load_pipeline(suite.pipeline)
    base = _if_dir(root, imbalance)
    if seeds is None:
        found = [os.path.basename(p)[1:] for p in glob.glob(os.path.join(base, "s*"))]
        seeds = sorted(int(s) for s in found if s.isdigit())
    header = ("| method | seeds | top1 | many | medium | few | GMACs/image | train time (s) |"
              + (" published top-1 |" if suite.published else ""))
    lines = [header, header_rule(header)]
    for stage in pipeline.stages:
        rows = []
        for seed in seeds:
            stage_dir = stage_dirs(pipeline, run_dir(root, imbalance, seed))[stage.name]
            results = _stage_results(stage, stage_dir)
            if results is not None:
                rows.append((results, training_seconds(stage_dir)))
        cells = [stage.label, str(len(rows))]
        for key in ("top1", "many", "medium", "few"):
            cells.append(_mean_std([r[key] for r, _ in rows if r.get(key) is not None]))
        cells.append(_mean_std([r["gmacs"] for r, _ in rows if r.get("gmacs") is not None], 4))
        cells.append(_mean_std([t for _, t in rows if t is not None], 0))
        if suite.published:
            cells.append(suite.published.get(stage.name, {}).get(imbalance, ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def header_rule(header: str) -> str:
    """The ``|---|---|`` line under a Markdown header row."""
    return "|" + "---|" * (header.count("|") - 1)


def replace_section(text: str, key: str, body: str) -> str:
    """``text`` with the block between ``<!-- key:begin -->`` and ``<!-- key:end -->``
    replaced by ``body`` (appended at the end when the markers are absent)."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    return text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"
