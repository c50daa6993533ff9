"""The accuracy suite of ``tools/benchmark.py accuracy``: every method, several seeds, one table.

A suite is a pipeline file (``configs/<dataset>/benchmark_suite.yaml``) whose stages are the
methods, wired to each other (DiVE to its BSCE teacher, cRT/LWS/tau-norm/NCM to the CE
model, ...). ``run_suite`` runs that pipeline once per (imbalance factor, seed) in
``<root>/if<IF>/s<seed>`` (``<root>/s<seed>`` for datasets with a fixed imbalance);
finished stages are skipped and interrupted ones resumed, so the command can be re-run
until everything is done. ``suite_table`` then reads every stage's results and gives the
mean ± std over seeds of top-1 / many / medium / few, the MACs per image and the training
time, beside the published numbers where there are any.

The published numbers are kept here, in the repository's ``benchmarks/`` folder, and not in
the installed package: they are what the benchmark tables are compared with, each with the
paper it comes from (``Suite.sources``).
"""

import glob
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

from ride_dive.data import build_datasets
from ride_dive.engine import setup_cfg
from ride_dive.engine.pipeline import load_pipeline, run_pipeline, stage_dirs, stage_metrics
from ride_dive.evaluation import (
    format_mean_std,
    format_paired,
    inference_gmacs,
    paired_difference,
)
from ride_dive.modeling import build_model
from ride_dive.utils.run_dir import RunDir

__all__ = [
    "PAIRED_COMPARISONS",
    "Suite",
    "SUITES",
    "TRAINING_TIME_KEY",
    "run_suite",
    "seed_warning",
    "paired_table",
    "suite_table",
    "training_seconds",
    "replace_section",
]

# benchmarks/ is never installed: it always sits in the repository, beside configs/.
_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")

# The results.json entry in which the trainer records the seconds of its training loop,
# summed over resumed sessions (absent when the run only evaluated).
TRAINING_TIME_KEY = "training_time_s"


@dataclass
class Suite:
    """A benchmark suite: its pipeline file, imbalance factors and published top-1."""

    title: str
    pipeline: str
    imbalance_factors: Sequence[Optional[float]] = (None,)
    # published[stage][imbalance factor] = "top-1 (many / medium / few)" text
    published: Dict[str, Dict[Optional[float], str]] = field(default_factory=dict)
    # sources[stage] = the paper the stage's published numbers come from
    sources: Dict[str, str] = field(default_factory=dict)
    # the seeds a table should have; fewer are reported with a warning
    default_seeds: Sequence[int] = (0, 1, 2)


# (A, B) stage pairs whose paired difference A - B over the shared seeds the suite reports:
# each method against what it builds on (its teacher, its stage-1 model, its baseline).
# Pairs with a stage a suite lacks are left out.
PAIRED_COMPARISONS = (
    ("bsce", "ce"),
    ("ldam_drw", "ce"),
    ("dive", "bsce"),
    ("ride_4e", "ldam_drw"),
    ("ride_dive", "ride_6e_bsce"),
    ("ride_dive", "dive"),
    ("ride_dive", "ride_4e"),
    ("ride_dive_router", "ride_dive"),
    ("crt", "ce"),
    ("lws", "ce"),
    ("tau_norm", "ce"),
    ("ncm", "ce"),
)


# The papers of the published numbers. docs/METHODS.md, section 9 ("Published reference
# numbers"), lists the same numbers with the same sources; tests/engine/test_accuracy_suite.py
# checks that every number below appears there.
DECOUPLING = (
    'Kang et al., "Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR 2020'
)
RIDE = (
    'Wang et al., "Long-tailed Recognition by Routing Diverse Distribution-Aware '
    'Experts", ICLR 2021'
)
DIVE = 'He et al., "Distilling Virtual Examples for Long-tailed Recognition", ICCV 2021'
# CIFAR-10-LT: numbers of a third-party reproduction; docs/METHODS.md names no paper for them.
THIRD_PARTY = "third-party reproduction (no paper)"


SUITES: Dict[str, Suite] = {
    "fashion-mnist-lt": Suite(
        "Fashion-MNIST-LT",
        os.path.join(_CONFIGS, "FashionMNIST-LT", "benchmark_suite.yaml"),
        (100.0, 10.0),
        # a 30-epoch run moves by 1.5-3 points between seeds: five make the intervals usable
        default_seeds=(0, 1, 2, 3, 4),
    ),
    "cifar100-lt": Suite(
        "CIFAR-100-LT",
        os.path.join(_CONFIGS, "CIFAR100-LT", "benchmark_suite.yaml"),
        (100.0, 50.0, 10.0),
        {
            "ce": {100.0: "38.35", 50.0: "42.41", 10.0: "56.51"},
            "bsce": {100.0: "42.39", 50.0: "47.60", 10.0: "58.38"},
            "dive": {100.0: "45.35", 50.0: "51.13", 10.0: "62.00"},
            "ride_3e": {100.0: "48.6"},
            "ride_4e": {100.0: "49.4 (4E + KD)"},
            # DiVE's RIDE-DiVE teacher (6 experts, BSCE), not RIDE's own 6E teacher (50.2).
            "ride_6e_bsce": {100.0: "51.07"},
            "ride_dive": {100.0: "51.66"},
        },
        {
            "ce": DIVE,
            "bsce": DIVE,
            "dive": DIVE,
            "ride_3e": RIDE,
            "ride_4e": RIDE,
            "ride_6e_bsce": DIVE,
            "ride_dive": DIVE,
        },
    ),
    "cifar10-lt": Suite(
        "CIFAR-10-LT",
        os.path.join(_CONFIGS, "CIFAR10-LT", "benchmark_suite.yaml"),
        (100.0,),
        {
            "ce": {100.0: "70.4 (third-party)"},
            "bsce": {100.0: "77.5 (third-party)"},
            "dive": {100.0: "78.9 (third-party)"},
        },
        {"ce": THIRD_PARTY, "bsce": THIRD_PARTY, "dive": THIRD_PARTY},
    ),
    "imagenet-lt": Suite(
        "ImageNet-LT",
        os.path.join(_CONFIGS, "ImageNet-LT", "benchmark_suite.yaml"),
        (None,),
        {
            "ce": {None: "44.4 (65.9 / 37.5 / 7.7)"},
            "crt": {None: "49.6"},
            "tau_norm": {None: "49.4"},
            "lws": {None: "49.9"},
            "bsce": {None: "50.48"},
            "dive": {None: "53.10 (64.06 / 50.41 / 31.46)"},
            "ride_4e": {None: "56.8 (4E + KD)"},
            "ride_dive": {None: "57.12"},
        },
        {
            "ce": DECOUPLING,
            "crt": DECOUPLING,
            "tau_norm": DECOUPLING,
            "lws": DECOUPLING,
            "bsce": DIVE,
            "dive": DIVE,
            "ride_4e": RIDE,
            "ride_dive": DIVE,
        },
    ),
    "inat18": Suite(
        "iNaturalist 2018",
        os.path.join(_CONFIGS, "iNat18", "benchmark_suite.yaml"),
        (None,),
        {
            "ce": {None: "62.60"},
            "bsce": {None: "65.35"},
            "dive": {None: "69.13"},
            "ride_4e": {None: "72.6 (4E + KD)"},
            "ride_dive": {None: "73.44"},
        },
        {"ce": DIVE, "bsce": DIVE, "dive": DIVE, "ride_4e": RIDE, "ride_dive": DIVE},
    ),
}


def _if_dir(root: str, imbalance: Optional[float]) -> str:
    return root if imbalance is None else os.path.join(root, f"if{imbalance:g}")


def run_dir(root: str, imbalance: Optional[float], seed: int) -> str:
    """Where the pipeline of one (imbalance factor, seed) writes its stages."""
    return os.path.join(_if_dir(root, imbalance), f"s{seed}")


def run_suite(
    suite: Suite,
    root: str,
    seeds: Sequence[int],
    imbalance_factors: Optional[Sequence[Optional[float]]] = None,
    opts: Sequence[str] = (),
) -> None:
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
            run_pipeline(suite.pipeline, run_opts + ["OUTPUT_DIR", run_dir(root, imbalance, seed)])


def training_seconds(stage_dir: str) -> Optional[float]:
    """Wall time of the stage's training loop in seconds (summed over resumed sessions), or
    None for a stage that did not train (evaluation only, tau-norm) or has not finished.

    Read from ``TRAINING_TIME_KEY`` in the stage's ``results.json``; run folders written
    before the trainer recorded that key fall back to their log.
    """
    run = RunDir(stage_dir)
    if os.path.isfile(run.results):
        with open(run.results) as f:
            seconds = json.load(f).get(TRAINING_TIME_KEY)
        if seconds is not None:
            return float(seconds)
    return _logged_training_seconds(run.log)


def _logged_training_seconds(log: str) -> Optional[float]:
    """For run folders written before results.json recorded the training time only: the sum
    of the ``Training time: <s> s`` lines that each training session logged."""
    if not os.path.isfile(log):
        return None
    with open(log, encoding="utf-8", errors="replace") as f:
        times = [float(m.group(1)) for m in re.finditer(r"Training time: ([0-9.]+) s", f.read())]
    return sum(times) if times else None


def _stage_results(stage, stage_dir: str) -> Optional[Dict]:
    """The stage's test metrics (see ``stage_metrics``), or None if it has not finished."""
    path = RunDir(stage_dir).results
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        report = json.load(f)
    results = stage_metrics(stage, report)
    # tau-norm's chosen tau: rescaling the classifier leaves the model's MACs as reported.
    results.setdefault("gmacs", report.get("gmacs"))
    if results["gmacs"] is None:  # runs older than the gmacs entry
        results["gmacs"] = _gmacs_of(stage_dir)
    return results


def _gmacs_of(stage_dir: str) -> Optional[float]:
    """GMACs per image of the stage's model, counted from its config (no weights needed)."""
    cfg = setup_cfg(RunDir(stage_dir).config, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    counts = build_datasets(cfg).class_counts  # the number of classes sizes the head
    return inference_gmacs(cfg, build_model(cfg, counts))


# The accuracies both tables report (each a results.json key): the mean ± std table one
# column each, the paired table one difference each.
_ACCURACY_KEYS = ("top1", "many", "medium", "few")


def suite_table(
    suite: Suite, root: str, imbalance: Optional[float], seeds: Optional[Sequence[int]] = None
) -> str:
    """Markdown table of one imbalance factor: mean ± std over the finished seeds.

    Args:
        seeds: the seeds to include; None = every ``s<seed>`` folder found.
    """
    pipeline = load_pipeline(suite.pipeline)
    if seeds is None:
        seeds = _found_seeds(root, imbalance)
    header = "| method | seeds | top1 | many | medium | few | GMACs/image | train time (s) |" + (
        " published top-1 |" if suite.published else ""
    )
    lines = [header, header_rule(header)]
    for stage in pipeline.stages:
        rows = []
        for seed in seeds:
            stage_dir = stage_dirs(pipeline, run_dir(root, imbalance, seed))[stage.name]
            results = _stage_results(stage, stage_dir)
            if results is not None:
                rows.append((results, training_seconds(stage_dir)))
        cells = [stage.label, str(len(rows))]
        for key in _ACCURACY_KEYS:
            cells.append(format_mean_std([r.get(key) for r, _ in rows]))
        cells.append(format_mean_std([r.get("gmacs") for r, _ in rows], 4))
        cells.append(format_mean_std([t for _, t in rows], 0))
        if suite.published:
            cells.append(suite.published.get(stage.name, {}).get(imbalance, ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _found_seeds(root: str, imbalance: Optional[float]) -> Sequence[int]:
    found = [
        os.path.basename(p)[1:] for p in glob.glob(os.path.join(_if_dir(root, imbalance), "s*"))
    ]
    return sorted(int(s) for s in found if s.isdigit())


def paired_table(
    suite: Suite, root: str, imbalance: Optional[float], seeds: Optional[Sequence[int]] = None
) -> str:
    """Markdown table of the ``PAIRED_COMPARISONS``: mean difference A - B of top-1 and of
    each shot group's accuracy (many / medium / few) over the seeds both finished, with its
    95 % t-interval; "(n.s.)" where the interval holds 0, "–" with fewer than two shared seeds
    or where the group is empty (no *few* class at Fashion-MNIST-LT IF 10, whose tail is the
    *medium* group)."""
    pipeline = load_pipeline(suite.pipeline)
    stages = {stage.name: stage for stage in pipeline.stages}
    seeds = _found_seeds(root, imbalance) if seeds is None else seeds
    per_seed: Dict[str, Dict[int, Dict]] = {name: {} for name in stages}
    for seed in seeds:
        dirs = stage_dirs(pipeline, run_dir(root, imbalance, seed))
        for name, stage in stages.items():
            results = _stage_results(stage, dirs[name])
            if results is not None:
                per_seed[name][seed] = results
    header = "| A − B | seeds | " + " | ".join(f"{k} difference" for k in _ACCURACY_KEYS) + " |"
    lines = [header, header_rule(header)]
    for a, b in PAIRED_COMPARISONS:
        if a not in stages or b not in stages:
            continue
        shared = sorted(set(per_seed[a]) & set(per_seed[b]))
        cells = [f"{stages[a].label} − {stages[b].label}", str(len(shared))]
        for key in _ACCURACY_KEYS:
            pairs = [(per_seed[a][s].get(key), per_seed[b][s].get(key)) for s in shared]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            cells.append(format_paired(paired_difference(*zip(*pairs))) if len(pairs) >= 2 else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_warning(suite: Suite, count: int) -> str:
    """A line for a table with fewer seeds than the suite's default ("" otherwise)."""
    wanted = len(suite.default_seeds)
    if count >= wanted:
        return ""
    return (
        f"**Only {count} seed(s)** (the suite's default is {wanted}): the ± and the intervals "
        "are wide, and a difference that is not significant here may be one with more seeds."
    )


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
