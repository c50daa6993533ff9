"""Present evaluation results: text tables for logs, a JSON file for tools, a PNG plot.

``format_results_table`` and ``save_results_json`` take the dict returned by
:func:`ride_dive.evaluation.inference_on_dataset`; ``format_router_table`` and
``plot_router_tradeoff`` the report of :func:`ride_dive.evaluation.router_tradeoff`.
"""

import json
import math
import os
from typing import Any, Mapping

import torch

from ..checkpoint.serialization import atomic_write_text
from ..utils.plotting import pyplot, save_figure

# (result key, column header); the order of the printed columns.
_COLUMNS = (
    ("top1", "top1"),
    ("top5", "top5"),
    ("many", "many"),
    ("medium", "medium"),
    ("few", "few"),
    ("ece", "ECE"),
)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.2f}"


def format_results_table(results: Mapping[str, Any], title: str = "Results") -> str:
    """Format top-1 / top-5 / many / medium / few / ECE as an aligned text table.

    Values are percentages with two decimals; a missing entry (e.g. a shot group with no
    class) shows as ``-``.

    Args:
        results: the metrics dict.
        title: first line of the table; the sample count is appended when known.

    Returns:
        Three lines: the title, the column headers and the values, without a final newline;
        multi-expert results add a line of each expert's top-1 and one of the share of
        samples per number of experts used.
    """
    if "num_samples" in results:
        title = f"{title} ({results['num_samples']} images)"
    headers = [h for _, h in _COLUMNS]
    cells = [_cell(results.get(k)) for k, _ in _COLUMNS]
    widths = [max(len(h), len(c)) for h, c in zip(headers, cells)]
    header_line = "  ".join(h.rjust(w) for h, w in zip(headers, widths))
    value_line = "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    lines = [title, header_line, value_line]
    if results.get("expert_top1"):
        lines.append("experts top1: " + "  ".join(_cell(v) for v in results["expert_top1"]))
    if results.get("experts_used"):
        shares = "  ".join(f"{k}: {_cell(v)}%" for k, v in results["experts_used"].items())
        mean = results.get("experts_used_mean")
        lines.append(f"experts used: {shares}" + (f"  (mean {mean:.2f})" if mean else ""))
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: tensors as lists, NaN / inf as None (JSON has neither)."""
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):  # NumPy scalars
        return _jsonable(obj.item())
    raise TypeError(f"cannot write a {type(obj).__name__} to results JSON")


def save_results_json(results: Mapping[str, Any], path: str) -> None:
    """Write ``results`` to ``path`` as indented JSON, atomically.

    The file is written to a temporary name in the same directory and renamed, so a reader
    never sees a partial file. Missing parent directories are created.
    """
    text = json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n"
    atomic_write_text(os.fspath(path), text)


def format_router_table(report: Mapping[str, Any], title: str = "Router") -> str:
    """The accuracy/compute sweep of :func:`router_tradeoff` as an aligned text table.

    One row per threshold: top-1, shot groups, mean experts used, average GMACs per image
    and their share of the full (router-free) ensemble's; ``*`` marks the configured
    threshold.
    """
    full = report["full_ensemble_gmacs"]
    per_k = "  ".join(f"{k + 1}: {g:.4f}" for k, g in enumerate(report["gmacs_per_expert_count"]))
    lines = [
        f"{title}: threshold {report['threshold']:g}, {report['gmacs']:.4f} GMACs/image on "
        f"average vs {full:.4f} for the full ensemble ({report.get('num_samples', '?')} images)",
        f"GMACs by experts run (routers included): {per_k}",
    ]
    headers = ["threshold", "top1", "many", "medium", "few", "experts", "GMACs", "vs full"]
    rows = []
    for row in report["sweep"]:
        mark = "*" if row["threshold"] == report["threshold"] else " "
        rows.append(
            [
                f"{row['threshold']:g}{mark}",
                *(_cell(row.get(k)) for k in ("top1", "many", "medium", "few")),
                f"{row['experts_used_mean']:.2f}",
                f"{row['gmacs']:.4f}",
                f"{100.0 * row['gmacs'] / full:.0f}%",
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for cells in [headers] + rows:
        lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    return "\n".join(lines)


def plot_router_tradeoff(report: Mapping[str, Any], path: str) -> bool:
    """Save top-1 against average GMACs per image over the sweep as a PNG.

    Returns:
        False (with nothing written) when matplotlib is not installed.
    """
    plt = pyplot()
    if plt is None:
        return False
    sweep = report["sweep"]
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.plot([r["gmacs"] for r in sweep], [r["top1"] for r in sweep], "o-", label="router")
    for r in sweep:
        ax.annotate(
            f"{r['threshold']:g}",
            (r["gmacs"], r["top1"]),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, 3),
        )
    ax.plot(
        [report["gmacs"]],
        [report["top1"]],
        "r*",
        markersize=12,
        label=f"threshold {report['threshold']:g}",
    )
    ax.axvline(report["full_ensemble_gmacs"], color="gray", linestyle="--", label="full ensemble")
    ax.set_xlabel("average GMACs per image")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("Router threshold sweep")
    ax.legend(loc="lower right")
    save_figure(fig, path)
    return True
