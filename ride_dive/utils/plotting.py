"""Optional matplotlib: figures for reports, skipped cleanly where matplotlib is missing."""

import os

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` with the file-only Agg backend, or None when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on training machines
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, path: str) -> None:
    """Lay out, write ``fig`` to ``path`` (parents created) as a 120-dpi PNG, and close it."""
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt  # present: the figure was made with it

    plt.close(fig)
