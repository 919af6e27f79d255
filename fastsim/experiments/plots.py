"""Figures shared by the learned-simulator experiments (NGS, GNRK)."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def figure(height: float, panels: int = 1):
    """A matplotlib figure with `panels` stacked axes (no pyplot state): `(fig, axes)`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(panels, 1, squeeze=False)[:, 0]


def plot_error_vs_time(results: Mapping[str, Mapping[str, Any]], out: str | os.PathLike) -> Path:
    """PNG of the rollout MAE against time after t0 (where it is 0), one line per label; `results[label]` holds
    `times` and `mae_vs_time`, both including t0 (an experiment's `evaluate` result)."""
    fig, (ax,) = figure(3.5)
    for label, r in results.items():
        times, mae = r["times"][1:], r["mae_vs_time"][1:]
        ax.semilogy(times, mae, marker="." if len(times) <= 100 else None, label=label)
    ax.set_xlabel("t")
    ax.set_ylabel("MAE")
    ax.legend()
    fig.savefig(out, format="png", dpi=110)
    return Path(out)
