"""Present evaluation results: a text table for logs and a JSON file for tools.

Both take the dict returned by :func:`ride_dive.evaluation.inference_on_dataset`.
"""
import json
import math
import os
from typing import Any, Mapping

import torch

from ..checkpoint.serialization import atomic_write_text

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
        Three lines: the title, the column headers and the values, without a final newline.
    """
    if "num_samples" in results:
        title = f"{title} ({results['num_samples']} images)"
    headers = [h for _, h in _COLUMNS]
    cells = [_cell(results.get(k)) for k, _ in _COLUMNS]
    widths = [max(len(h), len(c)) for h, c in zip(headers, cells)]
    header_line = "  ".join(h.rjust(w) for h, w in zip(headers, widths))
    value_line = "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    return "\n".join([title, header_line, value_line])


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
