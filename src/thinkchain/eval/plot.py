"""Accuracy against generated tokens per item, one point per mode: what extra compute buys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from thinkchain.eval.stats import ModeSummary

_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (it comes with the ``eval`` extra)."""


def plot_accuracy_vs_tokens(summaries: Sequence[ModeSummary], path: Path, title: str) -> Path:
    """Write a PNG: x = mean generated tokens per item (log scale), y = accuracy with its
    95 % Wilson interval as error bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("the plot needs matplotlib: pip install 'thinkchain[eval]'") from None

    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    try:
        for i, s in enumerate(summaries):
            x = max(s.mean_completion_tokens, 1.0)  # log scale: keep a mode that made 0 tokens
            ax.errorbar(
                [x],
                [100 * s.accuracy],
                yerr=[[100 * (s.accuracy - s.low)], [100 * (s.high - s.accuracy)]],
                # Modes with equal numbers sit on one spot: distinct markers keep them apart.
                fmt=_MARKERS[i % len(_MARKERS)],
                capsize=4,
                markersize=8,
                alpha=0.85,
                label=f"{s.mode}: {100 * s.accuracy:.0f} % ({s.correct}/{s.items}), "
                f"{s.mean_completion_tokens:,.0f} tok",
            )
        ax.set_xscale("log")
        if summaries:  # room around the outermost points, which would sit on the frame
            xs = [max(s.mean_completion_tokens, 1.0) for s in summaries]
            ax.set_xlim(min(xs) / 2, max(xs) * 2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-3, 103)  # a point at 0 % or 100 % stays whole, not cut by the frame
        ax.set_xlabel("generated tokens per item (mean, log scale)")
        ax.set_ylabel("accuracy (%) with 95 % Wilson interval")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        # Outside the axes, so the legend never hides a point.
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
