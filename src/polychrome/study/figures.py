"""The study report's figures, drawn with matplotlib's object API (no pyplot state) and saved without a
Software tag, so the same rows give the same bytes: as lossless WebP, the pixels of matplotlib's PNG in about a
third of its bytes (docs/gpu.md: the repository travels whole to a lent GPU).

A stat below is ``(mean, sd, n)`` over seeds (sd NaN with one seed) or None where a level has no rows.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from polychrome.files import atomic_path
from polychrome.viz import BASELINE_STYLES

SAVE = {"dpi": 100, "bbox_inches": "tight", "metadata": {"Software": None}}
Stat = tuple[float, float, int]


def _figure(columns: int, rows: int, width: float, height: float, **options):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns, height * rows))
    return figure, np.array(figure.subplots(rows, columns, squeeze=False, **options))


def save(figure, path: Path) -> None:
    """``figure`` at ``path`` as a lossless WebP (drawn as a PNG, whose pixels it keeps), atomically."""
    from PIL import Image

    drawn = io.BytesIO()
    figure.savefig(drawn, format="png", **SAVE)
    with atomic_path(path) as temporary:
        Image.open(drawn).convert("RGB").save(temporary, format="WEBP", lossless=True, quality=100, method=6)


def _thousands(ax) -> None:
    """Training images on the x axis as 96k, 192k, ...: whole numbers there run into each other."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k"))


def _error(stat: Stat) -> float:
    return 0.0 if math.isnan(stat[1]) else stat[1]


def _baselines(ax, references: dict[str, float], colour: str, series: str) -> None:
    for baseline, value in references.items():
        ax.axhline(
            value,
            color=colour,
            linestyle=BASELINE_STYLES.get(baseline, "--"),
            linewidth=0.8,
            label=f"{baseline} ({series})",
        )


def plot_factor(
    title: str,
    levels: list[str],
    panels: dict[str, dict[str, list[Stat | None]]],
    references: dict[str, dict[str, dict[str, float]]],
    joined: list[int],
    path: Path,
) -> None:
    """One panel per metric, one colour per evaluation set: each level's mean ± sd as a point. Only the
    levels in ``joined`` (the indices of an ordered sweep, e.g. lambda) are joined by a line: a line
    between unordered levels would suggest a trend that is not there."""
    figure, axes = _figure(len(panels), 1, 5, 3.6)
    for ax, (metric, series) in zip(axes[0], panels.items(), strict=True):
        for k, (name, stats) in enumerate(series.items()):
            shown = {i: s for i, s in enumerate(stats) if s is not None}
            ax.errorbar(
                list(shown),
                [s[0] for s in shown.values()],
                yerr=[_error(s) for s in shown.values()],
                fmt="o",
                capsize=3,
                color=f"C{k}",
                label=name,
            )
            line = [i for i in joined if i in shown]
            ax.plot(line, [shown[i][0] for i in line], color=f"C{k}", linewidth=1)
            _baselines(ax, references.get(metric, {}).get(name, {}), f"C{k}", name)
        ax.set_xticks(range(len(levels)), levels, rotation=20, ha="right")
        ax.set_title(f"{title}: {metric.replace('_', ' ')}")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save(figure, path)


def plot_curve_grid(
    curves: dict[str, dict[str, list[float]]], reference: str | None, path: Path, step: float, title: str
) -> None:
    """Small multiples of Zhang's accuracy-within-threshold curves: one panel per model (rebalanced solid,
    raw dashed), each with the ``reference`` model's curves in gray behind it, so nine models stay legible."""
    columns = min(4, len(curves))
    rows = math.ceil(len(curves) / columns)
    figure, axes = _figure(columns, rows, 2.8, 2.4, sharex=True, sharey=True)
    for ax, (name, model) in zip(axes.flat, curves.items(), strict=False):
        for kind, style in (("rebalanced", "-"), ("raw", "--")):
            x = np.arange(len(model[kind])) * step
            if reference in curves and name != reference:
                ax.plot(x, np.array(curves[reference][kind]) * 100, color="0.6", linestyle=style, linewidth=1)
            ax.plot(
                x,
                np.array(model[kind]) * 100,
                color="C0" if kind == "rebalanced" else "C1",
                linestyle=style,
                label=kind,
            )
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(curves) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("ab threshold (Lab units)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("% pixels within", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(f"{title}" + (f" (gray: {reference})" if reference in curves else ""), fontsize=10)
    figure.tight_layout()
    save(figure, path)


def plot_budget(
    curve: dict[str, dict[str, list[tuple[int, float]]]],
    own: dict[str, dict[str, tuple[int, Stat]]],
    references: dict[str, dict[str, dict[str, float]]],
    path: Path,
) -> None:
    """Accuracy of the base trained longer against training images (one line per evaluation set), the
    study's own budget marked (a star: the base's all-seed mean ± sd), the baselines as horizontal lines."""
    figure, axes = _figure(len(curve), 1, 5, 3.6)
    for ax, (metric, series) in zip(axes[0], curve.items(), strict=True):
        for k, (name, points) in enumerate(series.items()):
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                color=f"C{k}",
                label=f"{name}, base x longer",
            )
            if name in own.get(metric, {}):
                images, stat = own[metric][name]
                ax.errorbar(
                    [images],
                    [stat[0]],
                    yerr=[_error(stat)],
                    fmt="*",
                    markersize=12,
                    capsize=3,
                    color=f"C{k}",
                    label=f"{name}, the study's budget",
                )
            _baselines(ax, references.get(metric, {}).get(name, {}), f"C{k}", name)
        ax.set_xlabel("training images")
        _thousands(ax)
        ax.set_title(f"budget: {metric.replace('_', ' ')}")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save(figure, path)


def _budget_line(ax, budget: list[tuple[float, float, float]]) -> None:
    """The base trained longer, (images, compute, AuC) points, as a gray line labelled with the images seen."""
    if not budget:
        return
    ax.plot([b[1] for b in budget], [b[2] for b in budget], color="0.6", marker=".", linewidth=1)
    for k, (images, *point) in enumerate(budget):  # labels alternate below and above the line
        ax.annotate(
            f"{images / 1000:.0f}k",
            tuple(point),
            fontsize=6,
            color="0.4",
            textcoords="offset points",
            xytext=(2, -9 if k % 2 == 0 else 4),
        )


def plot_cost(
    factors: dict[str, dict[str, tuple[Stat, Stat, bool]]],
    budget: list[tuple[float, float, float]],
    earlier: dict[str, dict[str, tuple[Stat, Stat, bool]]],
    title: str,
    path: Path,
) -> None:
    """Small multiples of rebalanced AuC against compute (MACs x training images, log), one panel per factor
    (``factors``: factor -> level -> (compute, AuC, is the base)): each level's mean ± sd, the base a star.
    The base trained longer (``budget``: images, compute, AuC) is the gray line in every panel, its points
    labelled with the images seen, so a level is read against what the base reaches with as much compute.
    ``earlier`` holds the same levels from a study at another budget: each drawn hollow, joined to its level."""
    from matplotlib.ticker import NullFormatter

    columns = min(4, len(factors))
    rows = math.ceil(len(factors) / columns)
    figure, axes = _figure(columns, rows, 3.2, 2.6, sharex=True, sharey=True)
    for ax, (factor, levels) in zip(axes.flat, factors.items(), strict=False):
        _budget_line(ax, budget)
        for k, (level, (compute, auc, is_base)) in enumerate(levels.items()):
            colour = "black" if is_base else f"C{k % 10}"
            if then := earlier.get(factor, {}).get(level):
                ax.plot([then[0][0], compute[0]], [then[1][0], auc[0]], color=colour, linewidth=0.8, alpha=0.6)
                ax.errorbar(
                    [then[0][0]], [then[1][0]], yerr=[_error(then[1])], fmt="o", mfc="none", capsize=2, color=colour
                )
            ax.errorbar(
                [compute[0]],
                [auc[0]],
                yerr=[_error(auc)],
                fmt="*" if is_base else "o",
                markersize=10 if is_base else 5,
                capsize=2,
                color=colour,
                label=level,
            )
        ax.set_title(factor, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    axes[0, 0].set_xscale("log")  # once, after every point: shared axes set one by one can collapse to a point
    for ax in axes.flat:
        ax.xaxis.set_minor_formatter(NullFormatter())  # under a decade wide, minor labels run into each other
    for ax in axes.flat[len(factors) :]:
        ax.set_visible(False)
    for column in axes.T:  # the lowest shown panel of each column carries the x axis
        lowest = [ax for ax in column if ax.get_visible()][-1]
        lowest.xaxis.set_tick_params(labelbottom=True)
        lowest.set_xlabel("compute (MACs x images)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("rebalanced AuC", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save(figure, path)


def plot_power(
    seeds: list[int],
    curves: dict[tuple[float, str], list[float]],
    chosen: int,
    target: float,
    path: Path,
) -> None:
    """Power against seeds an arm (``study plan``): one colour per true difference, solid for Welch's test and
    dashed for the paired one (``curves``: (difference, test) -> power at each of ``seeds``), the target
    power as a dotted line and the design's seeds (``chosen``) as a vertical one."""
    figure, axes = _figure(1, 1, 5.5, 3.6)
    ax = axes[0, 0]
    differences = sorted({difference for difference, _ in curves})
    colours = {difference: f"C{k}" for k, difference in enumerate(differences)}
    for (difference, test), values in curves.items():
        ax.plot(
            seeds,
            values,
            color=colours[difference],
            linestyle="-" if test == "welch" else "--",
            linewidth=1.2,
            label=f"{difference:g} ({test})",
        )
    ax.axhline(target, color="gray", linestyle=":", linewidth=0.8)
    ax.axvline(chosen, color="black", linewidth=0.8)
    ax.set_xlabel("seeds an arm")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    ax.set_title(f"power of each comparison; design: {chosen} seeds an arm", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="true difference", title_fontsize=7)
    save(figure, path)
