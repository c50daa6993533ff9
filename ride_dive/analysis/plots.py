"""Bar chart of the virtual-example table, in the style of DiVE's Figs. 1 and 5."""

from typing import Dict, List, Mapping, Tuple

from ..utils.plotting import pyplot, save_figure

_GROUPS = (("many", "Many", "#4c72b0"), ("medium", "Medium", "#dd8452"), ("few", "Few", "#55a868"))
# DiVE Fig. 5 shows tau = 1, 3, 6; 10 is the end of the search range.
_SHOWN_TAUS = (1.0, 3.0, 6.0, 10.0)


def _label(row: Mapping, picks: Mapping) -> str:
    label = f"τ={row['temperature']:g}"
    if row["power"] != 1.0:
        label += f", p={row['power']:g}"
    return label + ("\n(pick)" if picks.get(row["power"]) == row["temperature"] else "")


def _bars(table: Mapping) -> List[Tuple[str, Dict]]:
    """``(label, group means)`` per bar cluster: the real counts, p = 1 at the shown taus
    (and its pick), then the pick of every other power."""
    rows, picks = table["rows"], table["picks"]
    plain = [
        r
        for r in rows
        if r["power"] == 1.0
        and (r["temperature"] in _SHOWN_TAUS or r["temperature"] == picks.get(1.0))
    ]
    if not plain:  # a custom grid: its first and last p = 1 rows
        ones = [r for r in rows if r["power"] == 1.0]
        plain = ones[:1] + ones[-1:] if len(ones) > 1 else ones
    for power, tau in picks.items():
        if power != 1.0:
            plain.append(next(r for r in rows if r["power"] == power and r["temperature"] == tau))
    return [("real", table["real"])] + [(_label(r, picks), r) for r in plain]


def plot_virtual_examples(table: Mapping, path: str) -> bool:
    """Save Many / Medium / Few average counts, real and virtual, as a grouped bar PNG.

    Args:
        table: the dict of :func:`ride_dive.analysis.virtual_example_table`.
        path: the PNG file (parent directories are created).

    Returns:
        False (with nothing written) when matplotlib is not installed.
    """
    plt = pyplot()
    if plt is None:
        return False
    clusters = _bars(table)
    width = 0.8 / len(_GROUPS)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(clusters) + 1.5), 3.8))
    for g, (key, name, color) in enumerate(_GROUPS):
        xs = [i + (g - 1) * width for i, (_, means) in enumerate(clusters) if key in means]
        heights = [means[key] for _, means in clusters if key in means]
        if xs:  # an empty shot group has no bars (and no legend entry)
            ax.bar(xs, heights, width, label=name, color=color)
    ax.set_xticks(range(len(clusters)))
    ax.set_xticklabels([label for label, _ in clusters], fontsize=8)
    ax.set_ylabel("average images per class")
    ax.set_title("Real and virtual examples per shot group")
    ax.legend()
    save_figure(fig, path)
    return True
