"""The study report's figures, drawn with matplotlib's object API (no pyplot state) and saved without a
Software tag, so the same rows give the same bytes: as lossless WebP, the pixels of matplotlib's PNG in about a
third of its bytes (docs/gpu.md: the repository travels whole to a lent GPU).

A stat below is ``(mean, sd, n)`` over seeds (sd NaN with one seed) or None where a level has no rows.
"""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from polychrome.files import atomic_path
from polychrome.viz import BASELINE_STYLES

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.typing import LineStyleType

SAVE = {"dpi": 100, "bbox_inches": "tight", "metadata": {"Software": None}}
TEXT = 9  # pt, the smallest text in any figure (ticks, legends, labels): at SAVE's dpi, 12.5 pixels
WIDTH = 8.0  # inches a figure is drawn to at most: the docs' column at SAVE's dpi, so it is shown near full size
DODGE = 0.2  # of the narrowest gap between levels: how far apart the evaluation sets' points at a level are
COST_DODGE = 0.04  # decades of compute between the levels that share one in the cost figure
Stat = tuple[float, float, int]


def _figure(columns: int, rows: int, width: float, height: float, **options):
    """A figure of ``rows`` x ``columns`` panels of ``width`` x ``height`` inches, its tick labels TEXT high."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns, height * rows))
    axes = np.array(figure.subplots(rows, columns, squeeze=False, **options))
    for ax in axes.flat:
        ax.tick_params(labelsize=TEXT)
    return figure, axes


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


def _dodge(centres: list[float], step: float) -> list[float]:
    """``centres`` (on a linear scale: log10 of a log axis's values) moved sideways so that points closer than
    ``step`` to one another are ``step`` apart around their middle: levels that share an x, like a
    decode-only factor's at one compute, side by side rather than on top of each other."""
    order = sorted(range(len(centres)), key=centres.__getitem__)
    groups: list[list[int]] = []
    for i in order:
        if groups and centres[i] - centres[groups[-1][-1]] < step:
            groups[-1].append(i)
        else:
            groups.append([i])
    moved = list(centres)
    for group in groups:
        middle = sum(centres[i] for i in group) / len(group)
        for j, i in enumerate(group):
            moved[i] = middle + (j - (len(group) - 1) / 2) * step
    return moved


def _baselines(ax, references: dict[str, float], colour: str) -> None:
    for baseline, value in references.items():
        ax.axhline(value, color=colour, linestyle=BASELINE_STYLES.get(baseline, "--"), linewidth=0.8)


def _legend_below(figure, handles: list, references: dict[str, dict[str, dict[str, float]]]) -> None:
    """One legend for every panel, under them: ``handles`` (a colour for each evaluation set), then a black
    line in the style of each baseline of ``references``, whose lines take their set's colour in the panels."""
    from matplotlib.lines import Line2D

    shown = {baseline for sets in references.values() for values in sets.values() for baseline in values}
    handles = handles + [
        Line2D([], [], color="black", linestyle=cast("LineStyleType", style), linewidth=0.8, label=name)
        for name, style in BASELINE_STYLES.items()
        if name in shown
    ]
    figure.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=math.ceil(len(handles) / math.ceil(len(handles) / 5)),  # rows of at most five, evenly filled
        fontsize=TEXT,
    )


def on_log_axis(levels: list[str], swept: dict[str, float]) -> bool:
    """Whether ``plot_factor`` draws the levels at their values on a log axis: when every level is in the
    sweep, with positive values over a decade or more (temperature 0.01 ... 1), as even steps would hide how
    much of it lies below a tenth. Otherwise the levels are one step apart, as categories."""
    values = [swept.get(level, 0.0) for level in levels]
    return min(values) > 0 and max(values) >= 10 * min(values)


def _positions(levels: list[str], swept: dict[str, float]) -> tuple[list[float], bool]:
    """Where each level sits on the x axis (log10 of its value on a log axis), and whether the axis is log."""
    if on_log_axis(levels, swept):
        return [math.log10(swept[level]) for level in levels], True
    return [float(i) for i in range(len(levels))], False


def plot_factor(
    title: str,
    levels: list[str],
    panels: dict[str, dict[str, list[Stat | None]]],
    references: dict[str, dict[str, dict[str, float]]],
    swept: dict[str, float],
    path: Path,
) -> Figure:
    """One panel per metric, one colour per evaluation set (the sets side by side at each level): each level's
    mean ± sd as a point. Only the levels of ``swept`` (an ordered sweep, e.g. lambda, with its values) are
    joined by a line: a line between unordered levels would suggest a trend that is not there."""
    figure, axes = _figure(len(panels), 1, WIDTH / len(panels), 3.2)
    centres, log = _positions(levels, swept)
    step = DODGE * min((b - a for a, b in itertools.pairwise(centres)), default=1.0)
    for ax, (metric, series) in zip(axes[0], panels.items(), strict=True):
        for k, (name, stats) in enumerate(series.items()):
            shown = {i: s for i, s in enumerate(stats) if s is not None}
            at = {i: centres[i] + (k - (len(series) - 1) / 2) * step for i in shown}
            x = {i: 10 ** at[i] if log else at[i] for i in shown}
            ax.errorbar(
                list(x.values()),
                [s[0] for s in shown.values()],
                yerr=[_error(s) for s in shown.values()],
                fmt="o",
                capsize=3,
                color=f"C{k}",
                label=name,
            )
            line = [i for i, level in enumerate(levels) if level in swept and i in shown]
            ax.plot([x[i] for i in line], [shown[i][0] for i in line], color=f"C{k}", linewidth=1)
            _baselines(ax, references.get(metric, {}).get(name, {}), f"C{k}")
        _level_ticks(ax, levels, centres, log)
        ax.set_title(f"{title}: {metric.replace('_', ' ')}", fontsize=TEXT + 1)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    _legend_below(figure, axes[0, -1].get_legend_handles_labels()[0], references)
    save(figure, path)
    return figure


def _level_ticks(ax, levels: list[str], centres: list[float], log: bool) -> None:
    """The level names under their points; on a log axis, no other ticks (minor labels would crowd them)."""
    from matplotlib.ticker import NullLocator

    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks([10**c if log else c for c in centres], levels, rotation=20, ha="right")


def plot_curve_grid(
    curves: dict[str, dict[str, list[list[float]]]], base: str, path: Path, step: float, title: str
) -> Figure:
    """Small multiples of Zhang's accuracy-within-threshold curves as differences from the ``base`` level (its
    panel the zero line): one panel per model, rebalanced and raw, each the level's mean over seeds minus the
    base's with a 95% band (``difference``), so a level above or below the base is seen where the curves
    themselves lie on top of each other. ``curves``: model -> kind -> one curve per seed (fractions)."""
    columns = min(3, len(curves))
    rows = math.ceil(len(curves) / columns)
    figure, axes = _figure(columns, rows, WIDTH / columns, 2.2, sharex=True, sharey=True)
    for ax, (name, model) in zip(axes.flat, curves.items(), strict=False):
        ax.axhline(0, color="0.4", linewidth=0.8)
        for k, (kind, style) in enumerate((("rebalanced", "-"), ("raw", "--"))):
            shift, half = difference(np.array(model[kind]) * 100, np.array(curves[base][kind]) * 100)
            x = np.arange(len(shift)) * step
            if half is not None and name != base:  # the base against itself is 0, with no spread to draw
                ax.fill_between(x, shift - half, shift + half, color=f"C{k}", alpha=0.25, linewidth=0)
            ax.plot(x, shift, color=f"C{k}", linestyle=style, label=kind)
        ax.set_title(name, fontsize=TEXT + 1)
        ax.grid(alpha=0.3)
    _x_axis_under_columns(axes, len(curves), "ab threshold (Lab units)")
    for ax in axes[:, 0]:
        ax.set_ylabel("pp vs base", fontsize=TEXT)
    figure.suptitle(f"{title}: % pixels within, level minus base ({base}), in pp", fontsize=TEXT + 1)
    figure.tight_layout()
    _legend_below(figure, axes[0, 0].get_legend_handles_labels()[0], {})
    save(figure, path)
    return figure


def difference(level: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The mean of ``level`` minus the mean of ``base`` (seeds x thresholds each) and the half-width of its 95%
    interval at each threshold: t(0.975, Welch-Satterthwaite df) times Welch's standard error, which counts the
    base's seeds as well as the level's. A side with one row (a baseline, seed 0) adds no variance, having none to
    estimate; with one row on both sides there is no interval (None)."""
    from scipy.stats import t

    shift = level.mean(axis=0) - base.mean(axis=0)
    sides = [(len(s), s.var(axis=0, ddof=1) / len(s)) for s in (level, base) if len(s) > 1]
    if not sides:
        return shift, None
    variance = sum(v for _, v in sides)
    with np.errstate(divide="ignore", invalid="ignore"):  # no spread at a threshold (all 100%): no width there
        freedom = variance**2 / sum(v**2 / (n - 1) for n, v in sides)
        half = np.where(variance > 0, t.ppf(0.975, np.where(variance > 0, freedom, 1.0)) * np.sqrt(variance), 0.0)
    return shift, half


def plot_budget(
    curve: dict[str, dict[str, list[tuple[int, float]]]],
    own: dict[str, dict[str, tuple[int, Stat]]],
    references: dict[str, dict[str, dict[str, float]]],
    path: Path,
) -> Figure:
    """Accuracy of the base trained longer against training images (one line per evaluation set), the
    study's own budget marked (a star: the base's all-seed mean ± sd), the baselines as horizontal lines."""
    from matplotlib.lines import Line2D

    figure, axes = _figure(len(curve), 1, WIDTH / len(curve), 3.2)
    for ax, (metric, series) in zip(axes[0], curve.items(), strict=True):
        for k, (name, points) in enumerate(series.items()):
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                color=f"C{k}",
                label=name,
            )
            if name in own.get(metric, {}):
                images, stat = own[metric][name]
                ax.errorbar([images], [stat[0]], yerr=[_error(stat)], fmt="*", markersize=12, capsize=3, color=f"C{k}")
            _baselines(ax, references.get(metric, {}).get(name, {}), f"C{k}")
        ax.set_xlabel("training images", fontsize=TEXT)
        _thousands(ax)
        ax.set_title(f"budget: {metric.replace('_', ' ')}", fontsize=TEXT + 1)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    star = Line2D([], [], color="black", marker="*", markersize=10, linestyle="none", label="the study's budget")
    _legend_below(figure, [*axes[0, -1].get_legend_handles_labels()[0], star], references)
    save(figure, path)
    return figure


def _x_axis_under_columns(axes, shown: int, label: str) -> None:
    """The panels after the first ``shown`` hidden, and the lowest shown panel of each column given the shared
    x axis's tick labels and ``label``: a column one panel short would otherwise have none."""
    for ax in axes.flat[shown:]:
        ax.set_visible(False)
    for column in axes.T:
        lowest = [ax for ax in column if ax.get_visible()][-1]
        lowest.xaxis.set_tick_params(labelbottom=True)
        lowest.set_xlabel(label, fontsize=TEXT)


def _budget_line(ax, budget: list[tuple[float, float, float]]) -> None:
    """The base trained longer, (images, compute, AuC) points, as a gray line; its first and last points
    labelled with the images seen (at a legible size, labels on every point would run into each other)."""
    if not budget:
        return
    ax.plot([b[1] for b in budget], [b[2] for b in budget], color="0.6", marker=".", linewidth=1)
    for (images, *point), below in ((budget[0], False), (budget[-1], True)):  # to the left, clear of the levels
        ax.annotate(
            f"{images / 1000:.0f}k",
            tuple(point),
            fontsize=TEXT,
            color="0.4",
            textcoords="offset points",
            xytext=(-4, -12 if below else 2),
            ha="right",
        )


def _cost_levels(ax, levels: dict[str, tuple[Stat, Stat, bool]], earlier: dict[str, tuple[Stat, Stat, bool]]) -> None:
    """One factor's levels at (compute, AuC), mean ± sd, the base a star; levels that share a compute (a
    decode-only factor's) dodged sideways by a factor of 10**COST_DODGE each, their ``earlier`` points with them."""
    centres = [math.log10(compute[0]) for compute, _, _ in levels.values()]
    shifts = [10 ** (moved - centre) for moved, centre in zip(_dodge(centres, COST_DODGE), centres, strict=True)]
    for k, ((level, (compute, auc, is_base)), shift) in enumerate(zip(levels.items(), shifts, strict=True)):
        colour = "black" if is_base else f"C{k % 10}"
        if then := earlier.get(level):
            ax.plot(
                [then[0][0] * shift, compute[0] * shift], [then[1][0], auc[0]], color=colour, linewidth=0.8, alpha=0.6
            )
            ax.errorbar(
                [then[0][0] * shift], [then[1][0]], yerr=[_error(then[1])], fmt="o", mfc="none", capsize=2, color=colour
            )
        ax.errorbar(
            [compute[0] * shift],
            [auc[0]],
            yerr=[_error(auc)],
            fmt="*" if is_base else "o",
            markersize=10 if is_base else 5,
            capsize=2,
            color=colour,
            label=level,
        )


def plot_cost(
    factors: dict[str, dict[str, tuple[Stat, Stat, bool]]],
    budget: list[tuple[float, float, float]],
    earlier: dict[str, dict[str, tuple[Stat, Stat, bool]]],
    title: str,
    path: Path,
) -> Figure:
    """Small multiples of rebalanced AuC against compute (MACs x training images, log), one panel per factor
    (``factors``: factor -> level -> (compute, AuC, is the base)), two a row, each with its legend beside it.
    The base trained longer (``budget``: images, compute, AuC) is the gray line in every panel, its points
    labelled with the images seen, so a level is read against what the base reaches with as much compute.
    ``earlier`` holds the same levels from a study at another budget: each drawn hollow, joined to its level."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    columns = min(2, len(factors))
    rows = math.ceil(len(factors) / columns)
    figure, axes = _figure(columns, rows, WIDTH / 2, 2.3, sharex=True, sharey=True)
    for ax, (factor, levels) in zip(axes.flat, factors.items(), strict=False):
        _budget_line(ax, budget)
        _cost_levels(ax, levels, earlier.get(factor, {}))
        ax.set_title(factor, fontsize=TEXT + 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=TEXT, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    axes[0, 0].set_xscale("log")  # once, after every point: shared axes set one by one can collapse to a point
    low, high = axes[0, 0].get_xlim()
    for ax in axes.flat:
        ax.xaxis.set_minor_formatter(NullFormatter())  # under a decade wide, minor labels run into each other
        if high < 10 * low:  # no power of ten in view to label: three plain ticks, so the axis still reads
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.1e}".replace("e+", "e")))
    _x_axis_under_columns(axes, len(factors), "compute (MACs x images)")
    for ax in axes[:, 0]:
        ax.set_ylabel("rebalanced AuC", fontsize=TEXT)
    figure.suptitle(title, fontsize=TEXT + 1)
    figure.tight_layout()
    save(figure, path)
    return figure


def plot_power(
    seeds: list[int],
    curves: dict[tuple[float, str], list[float]],
    chosen: int,
    target: float,
    path: Path,
) -> Figure:
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
    ax.set_title(f"power of each comparison; design: {chosen} seeds an arm", fontsize=TEXT + 1)
    ax.legend(fontsize=TEXT, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="true difference", title_fontsize=TEXT)
    save(figure, path)
    return figure
