"""Evaluation figures: the reliability diagram and per-class accuracy against class size.

Both are drawn from plain numbers stored in a JSON file (the bins of
:func:`ride_dive.evaluation.reliability_bins`, a results dict's ``per_class``), so a figure
can be redrawn without the model. matplotlib is optional: each function returns False and
writes nothing when it is missing.
"""

from typing import Mapping, Optional, Sequence

from ..utils.plotting import pyplot, save_figure

__all__ = ["plot_per_class_vs_train_count", "plot_reliability_diagram"]


def plot_reliability_diagram(
    bins: Mapping, path: str, ece: Optional[float] = None, title: str = "Reliability diagram"
) -> bool:
    """Accuracy against confidence per bin, with the diagonal, over the bin counts.

    Args:
        bins: ``{"edges", "count", "confidence", "accuracy"}`` (fractions; None = empty).
        path: the PNG file.
        ece: shown in the title (percent), if given.
        title: the figure title.
    """
    plt = pyplot()
    if plt is None:
        return False
    edges = bins["edges"]
    lefts, widths = edges[:-1], [hi - lo for lo, hi in zip(edges[:-1], edges[1:])]
    filled = [i for i, c in enumerate(bins["count"]) if c > 0]
    fig, (ax, ax_n) = plt.subplots(
        2, 1, figsize=(4.8, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.bar(
        [lefts[i] for i in filled],
        [bins["accuracy"][i] for i in filled],
        [widths[i] for i in filled],
        align="edge",
        color="#4c72b0",
        edgecolor="white",
        label="accuracy",
    )
    ax.plot(
        [bins["confidence"][i] for i in filled],
        [bins["accuracy"][i] for i in filled],
        "o",
        color="#dd8452",
        markersize=4,
        label="(mean confidence, accuracy)",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title + (f" (ECE {ece:.2f}%)" if ece is not None else ""), fontsize=10)
    ax_n.bar(lefts, bins["count"], widths, align="edge", color="#8c8c8c", edgecolor="white")
    ax_n.set_yscale("symlog", linthresh=1)
    ax_n.set_xlabel(f"confidence (top softmax probability), {len(widths)} bins")
    ax_n.set_ylabel("images")
    save_figure(fig, path)
    return True


def plot_per_class_vs_train_count(
    per_class: Sequence[Optional[float]],
    train_counts: Sequence[int],
    path: str,
    many_threshold: int = 100,
    few_threshold: int = 20,
    title: str = "Per-class test accuracy",
) -> bool:
    """Scatter of each class's test accuracy (%) against its training images (log x).

    Dotted lines mark the shot-group boundaries: few ``< few_threshold <=`` medium ``<=
    many_threshold <`` many. Classes without test images (None) are left out.
    """
    plt = pyplot()
    if plt is None:
        return False
    if len(per_class) != len(train_counts):
        raise ValueError(
            f"{len(per_class)} per-class accuracies for {len(train_counts)} training counts"
        )
    points = [
        (int(n), float(a), c)
        for c, (n, a) in enumerate(zip(train_counts, per_class))
        if a is not None and n > 0
    ]
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=18, color="#4c72b0", zorder=3)
    if len(points) <= 30:  # label the classes while the labels stay readable
        for n, acc, c in points:
            ax.annotate(str(c), (n, acc), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xscale("log")
    lo = min([p[0] for p in points] + [few_threshold]) / 1.5
    hi = max([p[0] for p in points] + [many_threshold]) * 1.5
    ax.set_xlim(lo, hi)
    ax.set_ylim(-2, 102)
    for x in (few_threshold, many_threshold):
        ax.axvline(x, color="gray", linestyle=":", zorder=1)
    # Group names centred (geometrically) in their x ranges.
    for name, a, b in (
        ("Few", lo, few_threshold),
        ("Medium", few_threshold, many_threshold),
        ("Many", many_threshold, hi),
    ):
        if b > a:
            ax.text((a * b) ** 0.5, 101, name, ha="center", va="top", fontsize=8, color="gray")
    ax.set_xlabel("training images of the class (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    save_figure(fig, path)
    return True
