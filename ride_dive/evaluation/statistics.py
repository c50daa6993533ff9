"""Paired comparison of two methods over shared seeds (docs/METHODS.md section 10).

A 30-epoch Fashion-MNIST-LT run moves by 1.5-3 points between seeds, more than many of the
differences between methods; the seed's effect is largely shared by two methods trained on
the same seed (same split, same initialisation stream), so the per-seed difference
``d_s = A(s) - B(s)`` is far less noisy than either mean. Its 95 % interval
``mean(d) +- t_{0.975, n-1} * sd(d) / sqrt(n)`` says whether the difference is signal.
"""

import math
import statistics
from typing import Dict, Iterable, Optional, Sequence

__all__ = ["format_mean_std", "paired_difference", "t_quantile_975", "format_paired"]

# Student's t 0.975 quantiles for 1..30 degrees of freedom (standard tables, 3 decimals).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (1.96 beyond 120)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    if df <= 60:  # tables: 40 -> 2.021, 60 -> 2.000; linear in 1/df is exact to 1e-3
        return 2.042 + (2.000 - 2.042) * (1 / 30 - 1 / df) / (1 / 30 - 1 / 60)
    if df <= 120:
        return 2.000 + (1.980 - 2.000) * (1 / 60 - 1 / df) / (1 / 60 - 1 / 120)
    return 1.960


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Dict[str, float]:
    """Mean of ``a[s] - b[s]`` over shared seeds with its 95 % t-interval.

    Args:
        a, b: one value per seed, in the same seed order (at least 2 seeds).

    Returns:
        ``{"n", "mean", "sd", "half_width", "low", "high", "significant"}``; ``significant``
        is False when the interval holds 0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need the same seeds, got {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        raise ValueError(f"a paired interval needs at least 2 seeds, got {n}")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "half_width": half,
        "low": mean - half,
        "high": mean + half,
        "significant": not (mean - half <= 0.0 <= mean + half),
    }


def format_paired(diff: Dict[str, float]) -> str:
    """``"+1.23 [+0.40, +2.06]"``, with ``" (n.s.)"`` when the interval holds 0."""
    text = f"{diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}]"
    return text if diff["significant"] else text + " (n.s.)"


def format_mean_std(values: Iterable[Optional[float]], digits: int = 2) -> str:
    """``"mean ± std"`` of the values (sample std), the value alone for one, ``"–"`` for none.

    ``None`` entries (a seed that did not report the number) are left out.
    """
    values = [float(v) for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
