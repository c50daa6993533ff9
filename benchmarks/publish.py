"""Turn finished runs into model zoo entries: a stripped checkpoint, its manifest entry and
the generated ``MODEL_ZOO.md``.

A run directory is publishable when it holds ``config.yaml``, ``results.json`` and the
weights its results were measured with (``model_final.pth``, or ``model_best.pth`` when the
run evaluated its validation-best weights). The published file keeps the model's weights
only (no optimizer, scheduler, RNG or teacher state) plus a small ``meta`` dict, and is
checked to load strictly into the model built from the packaged config, so that
``model_zoo.get(name, trained=True)`` is known to work before the entry is written.

Maintainer code behind ``tools/publish_model_zoo.py``, kept in the repository's
``benchmarks/`` folder rather than in ``ride_dive.model_zoo``: it evaluates with the engine
(``--evaluate``), and the installed zoo (configs, manifest, verified downloads) sits below the
engine and must not import it.
"""

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ride_dive.checkpoint import atomic_torch_save, file_sha256, load_model_state, safe_torch_load
from ride_dive.config import CfgNode, ConfigError, get_cfg
from ride_dive.data.build import build_datasets
from ride_dive.engine.defaults import DefaultTrainer, setup_cfg
from ride_dive.evaluation import inference_gmacs
from ride_dive.model_zoo import inference_overrides
from ride_dive.model_zoo.download import checkpoint_url
from ride_dive.model_zoo.manifest import Manifest, ZooEntry
from ride_dive.model_zoo.resources import config_path, list_config_names
from ride_dive.modeling import build_model
from ride_dive.utils.run_dir import RunDir

__all__ = [
    "RUN_SPECIFIC_KEYS",
    "config_differences",
    "find_zoo_name",
    "publish_run",
    "render_model_zoo_md",
]

# Keys that name where and how a run ran, not what it trained; a run matches a packaged
# config when every other key is equal.
RUN_SPECIFIC_KEYS = (
    "OUTPUT_DIR",
    "SEED",
    "MODEL.WEIGHTS",
    "MODEL.DEVICE",
    "MODEL.TEACHER.CONFIG_FILE",
    "MODEL.TEACHER.WEIGHTS",
    "DATASETS.ROOT",
    "DATALOADER.NUM_WORKERS",
)
# results.json's "weights" -> the checkpoint (RunDir name) the results were measured with.
_WEIGHT_FILES = {"final": RunDir.FINAL, "best (validation)": RunDir.BEST}
_METRICS = ("top1", "many", "medium", "few", "gmacs", "ece")


def _flatten(node: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(node, dict):
        flat = {}
        for k, v in node.items():
            flat.update(_flatten(v, f"{prefix}{k}."))
        return flat
    value = list(node) if isinstance(node, tuple) else node
    return {prefix[:-1]: value}


def _load_cfg(path: str) -> CfgNode:
    cfg = get_cfg()
    cfg.merge_from_file(path)
    return cfg


def _normalized(cfg: CfgNode) -> Dict[str, Any]:
    flat = _flatten(cfg)
    # REFERENCE_BATCH_SIZE 0 means "BATCH_SIZE" (no LR scaling): runs from before the key
    # existed wrote 0 and trained exactly as a config whose reference equals its batch.
    if flat.get("SOLVER.REFERENCE_BATCH_SIZE") == 0:
        flat["SOLVER.REFERENCE_BATCH_SIZE"] = flat.get("SOLVER.BATCH_SIZE")
    return flat


def config_differences(run_cfg: CfgNode, zoo_cfg: CfgNode) -> List[Tuple[str, Any, Any]]:
    """``[(key, run value, packaged value)]`` for keys that differ, run-specific ones aside."""
    a, b = _normalized(run_cfg), _normalized(zoo_cfg)
    return [
        (k, a.get(k), b.get(k))
        for k in sorted(set(a) | set(b))
        if k not in RUN_SPECIFIC_KEYS and a.get(k) != b.get(k)
    ]


def find_zoo_name(run_cfg: CfgNode, name: Optional[str] = None) -> str:
    """The packaged config the run trained: ``name`` if given, else the one config equal to
    the run's in every key but the run-specific ones.

    Raises:
        ConfigError: ``name`` differs from the run's config (the keys are listed), or no /
            several packaged configs match.
    """
    if name is not None:
        diffs = config_differences(run_cfg, _load_cfg(config_path(name)))
        if diffs:
            raise ConfigError(
                f"The run's config differs from the packaged '{name}' in "
                + "; ".join(f"{k}: {a!r} in the run vs {b!r}" for k, a, b in diffs[:8])
                + (f" ... and {len(diffs) - 8} more" if len(diffs) > 8 else "")
                + ". A zoo entry must be reproducible from its packaged config."
            )
        return name
    scored = []
    for candidate in list_config_names():
        if os.path.basename(candidate).startswith("Base-"):
            continue  # shared defaults, not a recipe of their own
        try:
            cfg = _load_cfg(config_path(candidate))
        except Exception:  # noqa: BLE001 - pipeline files and suites are not model configs
            continue
        scored.append((len(config_differences(run_cfg, cfg)), candidate))
    scored.sort()
    exact = [c for n, c in scored if n == 0]
    if len(exact) == 1:
        return exact[0]
    if exact:
        raise ConfigError(
            f"The run matches several packaged configs ({', '.join(exact)}); choose one with --name"
        )
    closest = ", ".join(f"{c} ({n} keys differ)" for n, c in scored[:3])
    if scored:
        diffs = config_differences(run_cfg, _load_cfg(config_path(scored[0][1])))
        closest += (
            " [the first differs in "
            + "; ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in diffs[:4])
            + "]"
        )
    raise ConfigError(
        "The run's config matches no packaged config in every training key; the closest "
        f"are {closest}. Publish runs of packaged configs (only SEED, OUTPUT_DIR and paths "
        "may differ), or add the config under configs/ first."
    )


def _train_command(run_dir: str) -> str:
    """The command line that trained the run, as its log recorded it ("" if absent)."""
    log = RunDir(run_dir).log
    if not os.path.isfile(log):
        return ""
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r"Command line: (.*)$", line)
            if m:
                return m.group(1).strip()
    return ""


def _entry_metrics(results: Dict[str, Any], gmacs: float) -> Dict[str, Any]:
    """The manifest's metrics: test-split numbers of the run (rounded for reading), and
    ``gmacs`` measured on the model when the run's results predate that field."""
    metrics = {k: results[k] for k in _METRICS if k in results}
    metrics.setdefault("gmacs", gmacs)
    if isinstance(results.get("val"), dict) and "top1" in results["val"]:
        metrics["val_top1"] = results["val"]["top1"]
    router = results.get("router")
    if isinstance(router, dict) and "threshold" in router:
        metrics["router_threshold"] = router["threshold"]
        metrics["experts_used_mean"] = router.get("experts_used_mean")
        metrics["full_ensemble_top1"] = router.get("full_ensemble_top1")
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def _read_run(run_dir: str) -> Tuple[CfgNode, Dict[str, Any], str]:
    """The run's config, its results and the path of the weights they were measured with."""
    run = RunDir(run_dir)
    missing = [
        name
        for name, path in ((RunDir.CONFIG, run.config), (RunDir.RESULTS, run.results))
        if not os.path.isfile(path)
    ]
    if missing:
        raise FileNotFoundError(
            f"{run_dir} is not a finished run: no {' or '.join(missing)}. Publish the "
            "directory of a training run that has finished and evaluated."
        )
    with open(run.results, encoding="utf-8") as f:
        results = json.load(f)
    checkpoint = _WEIGHT_FILES.get(results.get("weights", "final"))
    weights = run.checkpoint(checkpoint) if checkpoint else None
    if weights is None or not os.path.isfile(weights):
        raise FileNotFoundError(
            f"{run_dir}: {RunDir.RESULTS} was measured with '{results.get('weights')}' "
            f"weights but {os.path.basename(weights) if weights else 'that checkpoint'} is "
            "not in the directory (evaluation-only runs such as NCM or tau-norm have no "
            "checkpoint of their own to publish)"
        )
    return _load_cfg(run.config), results, weights


def evaluate_published(name: str, weights: str, output_dir: str) -> Dict[str, Any]:
    """Evaluate ``weights`` with the packaged config ``name`` exactly as
    ``tools/model_zoo.py eval`` does (test split, router threshold chosen on validation),
    writing ``results.json`` into ``output_dir``; returns the results."""
    opts = inference_overrides(weights) + ["OUTPUT_DIR", output_dir]
    trainer = DefaultTrainer(setup_cfg(config_path(name), opts))
    trainer.resume_or_load(resume=False)  # the eval-only path: loads MODEL.WEIGHTS = weights
    return trainer.test()


def publish_run(
    run_dir: str,
    output_dir: str,
    manifest: Manifest,
    name: Optional[str] = None,
    class_counts: Optional[List[int]] = None,
    evaluate: bool = False,
) -> ZooEntry:
    """Publish one finished run into ``output_dir`` and add its entry to ``manifest``.

    Args:
        run_dir: the run's output directory.
        output_dir: where the stripped checkpoint is written, as
            ``<config dir>/<config stem>-<sha256[:8]>.pth`` (upload this tree to the base URL).
        manifest: updated in place (an entry of the same name is replaced).
        name: the packaged config (relative to ``configs/``); found from the run's config
            when None.
        class_counts: the training set's images per class; read from the run's dataset
            (``build_datasets``) when None.
        evaluate: measure the entry's metrics by evaluating the published file with the
            current code (:func:`evaluate_published`) instead of copying the run's
            ``results.json``, so that ``tools/model_zoo.py eval`` reproduces the table even
            when the run was evaluated by an older version.

    Returns:
        The new entry.
    """
    run_cfg, results, weights_path = _read_run(run_dir)
    published_weights = results.get("weights", "final")  # which of the run's checkpoints
    name = find_zoo_name(run_cfg, name)
    if class_counts is None:
        class_counts = [int(c) for c in build_datasets(run_cfg).class_counts]
    state = safe_torch_load(weights_path)
    state = state["model"] if isinstance(state, dict) and "model" in state else state
    zoo_cfg = _load_cfg(config_path(name))
    zoo_cfg.merge_from_list(["MODEL.DEVICE", "cpu"])
    model = build_model(zoo_cfg, class_counts=class_counts)
    # Strict: the entry is written only if the packaged config rebuilds this model exactly.
    load_model_state(model, state, strict=True, source=weights_path)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    metrics = _entry_metrics(results, inference_gmacs(zoo_cfg, model))
    payload = {
        "model": model.state_dict(),
        "meta": {
            "zoo_name": name,
            "class_counts": class_counts,
            "source_run": os.path.relpath(run_dir),
            "seed": int(run_cfg.SEED),
        },
    }
    stem = os.path.splitext(name)[0]
    staging = os.path.join(output_dir, f"{stem}.publishing.pth")
    atomic_torch_save(payload, staging)
    digest = file_sha256(staging)
    rel_file = f"{stem}-{digest[:8]}.pth"
    final = os.path.join(output_dir, *rel_file.split("/"))
    os.replace(staging, final)
    if evaluate:
        # Next to the upload tree, not in it: results.json and the log, for the record.
        evaluations = os.path.join(
            os.path.dirname(os.path.abspath(output_dir)), "model_zoo_evaluations", stem
        )
        results = evaluate_published(name, final, evaluations)
        metrics = _entry_metrics(results, inference_gmacs(zoo_cfg, model))
    entry = ZooEntry(
        name=name,
        file=rel_file,
        sha256=digest,
        size=os.path.getsize(final),
        method=_method_label(zoo_cfg),
        dataset=name.split("/")[0],
        metrics=metrics,
        params=round(params, 4),
        class_counts=class_counts,
        source={
            "run": os.path.relpath(run_dir),
            "seed": int(run_cfg.SEED),
            "weights": published_weights,
            "metrics_from": "re-evaluated at publishing" if evaluate else "run's results.json",
            "train_command": _train_command(run_dir),
        },
    )
    manifest.add(entry)
    return entry


def _method_label(cfg: CfgNode) -> str:
    """A short description from the config, e.g. ``RIDE 4E + router / DiVELoss``."""
    m = cfg.MODEL
    loss = m.LOSS.RIDE.BASE_LOSS if m.LOSS.NAME == "RIDELoss" else m.LOSS.NAME
    if m.META_ARCHITECTURE == "RIDE":
        arch = f"RIDE {m.RIDE.NUM_EXPERTS}E" + (" + router" if m.ROUTER.ENABLED else "")
    else:
        arch = m.HEAD.NAME
    return f"{arch} / {loss}"


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "–"


def render_model_zoo_md(manifest: Manifest, command: str) -> str:
    """``MODEL_ZOO.md``: one table per dataset, generated from ``manifest``."""
    lines = [
        "# Model zoo",
        "",
        "<!-- Generated from model_zoo/manifest.json by tools/publish_model_zoo.py; "
        "do not edit by hand. -->",
        "",
        "Every checkpoint below was trained by this framework; its numbers are the test-split "
        "results of the run that produced it (one seed: see `source` in the manifest; the "
        "3-seed means are in BENCHMARKS.md). Use one with",
        "",
        "```python",
        "from ride_dive import model_zoo",
        'model = model_zoo.get("<config>", trained=True)   # downloads, verifies sha256, caches',
        "```",
        "",
        "or evaluate it: `python tools/model_zoo.py eval <config>`. Files are fetched from "
        f"`{manifest.base_url or '(no base URL set)'}` unless `RIDE_DIVE_MODEL_ZOO_URL` names "
        "a mirror; see the README's *Model zoo* section.",
        "",
        f"Last published with: `{command}` (publishing replaces the entries it names and "
        "keeps the others; each entry's `source` in the manifest names the run and the "
        "command that trained it).",
        "",
    ]
    by_dataset: Dict[str, List[ZooEntry]] = {}
    for entry in manifest.entries.values():
        by_dataset.setdefault(entry.dataset, []).append(entry)
    for dataset, entries in by_dataset.items():
        lines += [
            f"## {dataset}",
            "",
            "| Config | Method | Top-1 | Many | Medium | Few | GMACs | Params (M) | Seed | "
            "File | sha256 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for e in entries:
            m = e.metrics
            link = f"[{os.path.basename(e.file)}]({checkpoint_url(e, manifest.base_url)})"
            lines.append(
                f"| `{e.name}` | {e.method} | {_fmt(m.get('top1'))} | {_fmt(m.get('many'))} | "
                f"{_fmt(m.get('medium'))} | {_fmt(m.get('few'))} | {_fmt(m.get('gmacs'), 4)} | "
                f"{_fmt(e.params, 3)} | {e.source.get('seed', '–')} | {link} | "
                f"`{e.sha256[:12]}` |"
            )
        lines.append("")
    return "\n".join(lines)
