"""Mean ± std tables over seeds from the files ``tools/evaluate_run.py`` writes into run
folders (``evaluation.json``, ``label_shift.json``): label shift without and with
post-compensation, and calibration. Runs of one method differ only by their ``_s<seed>``
suffix."""

import json
import os
import re
from collections import OrderedDict

from ..utils.run_dir import RunDir
from .label_shift import protocol_name
from .statistics import format_mean_std

__all__ = ["EVALUATION", "LABEL_SHIFT", "aggregate"]

# The files of tools/evaluate_run.py in a run folder (or its --output).
EVALUATION = "evaluation.json"
LABEL_SHIFT = "label_shift.json"


def _method(run_dir: str) -> str:
    """The run directory without its seed: ``.../ce_r32_s1`` -> ``.../ce_r32``."""
    return re.sub(r"_s\d+(?=/|$)", "", os.path.normpath(run_dir))


def _confidence(evaluation: dict):
    """Mean top probability (%) over the test set, from the reliability bins."""
    bins = evaluation.get("reliability")
    if not bins or not sum(bins["count"]):
        return None
    total = sum(n * c for n, c in zip(bins["count"], bins["confidence"]) if n)
    return 100.0 * total / sum(bins["count"])


def _read(run_dir: str, name: str):
    """The JSON file ``name`` of a run folder, or None when absent."""
    path = RunDir(run_dir).path(name)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def aggregate(run_dirs) -> str:
    """Markdown tables (label shift, calibration) of mean ± std over each method's seeds."""
    missing = [r for r in run_dirs if not os.path.isfile(RunDir(r).path(EVALUATION))]
    if missing:
        raise FileNotFoundError(
            f"no {EVALUATION} in "
            + ", ".join(missing)
            + ": run tools/evaluate_run.py on them first"
        )
    methods = OrderedDict()
    for run in run_dirs:
        methods.setdefault(_method(run), []).append(run)
    prefix = os.path.commonpath(list(methods)) if len(methods) > 1 else ""
    names = {m: os.path.relpath(m, prefix) if prefix else os.path.basename(m) for m in methods}
    lines = []
    shifted = {m: [_read(r, LABEL_SHIFT) for r in runs] for m, runs in methods.items()}
    if any(s for reports in shifted.values() for s in reports):
        cols = None
        body = []
        for m, reports in shifted.items():
            reports = [r for r in reports if r]
            if not reports:
                continue
            keys = [(r["protocol"], r["rho"]) for r in reports[0]["rows"] if not r["pc"]]
            cols = cols or keys
            prior = (
                "+ log p_t" if reports[0]["trained_with_prior_logits"] else "+ log p_t − log p_s"
            )
            for pc in (False, True):
                cells = []
                for protocol, rho in cols:
                    cells.append(
                        format_mean_std(
                            [
                                row["top1"]
                                for r in reports
                                for row in r["rows"]
                                if (row["protocol"], row["rho"], row["pc"]) == (protocol, rho, pc)
                            ]
                        )
                    )
                label = f"PC ({prior})" if pc else "no PC"
                body.append(
                    f"| {names[m]} | {label} | {len(reports)} | " + " | ".join(cells) + " |"
                )
        header = [protocol_name(p, r) for p, r in cols]
        lines += (
            [
                "Top-1 (%) on the label-shifted test sets, mean ± std over seeds.",
                "",
                "| method | | seeds | " + " | ".join(header) + " |",
                "|---|---|---|" + "---|" * len(header),
            ]
            + body
            + [""]
        )
    lines += [
        "Calibration on the (balanced) test set, mean ± std over seeds: ECE (equal-width "
        "bins, TEST.ECE_BINS) and mean confidence (top softmax probability) in %, NLL "
        "in nats, Brier summed over classes. Confidence below top-1 = underconfident.",
        "",
        "| method | seeds | top-1 (%) | confidence (%) | ECE (%) | NLL | Brier |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, runs in methods.items():
        evals = [e for e in (_read(r, EVALUATION) for r in runs) if e]
        if not evals:
            continue
        cells = [
            format_mean_std([e["top1"] for e in evals]),
            format_mean_std([_confidence(e) for e in evals]),
            format_mean_std([e["ece"] for e in evals]),
            format_mean_std([e["nll"] for e in evals], 3),
            format_mean_std([e["brier"] for e in evals], 3),
        ]
        lines.append(f"| {names[m]} | {len(evals)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
