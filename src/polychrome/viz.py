"""Figures, drawn with matplotlib's object API (no pyplot state). Nothing below this layer imports it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor

from polychrome.color import lab_to_rgb
from polychrome.color.bins import GRID, bin_entropy, entropy_quantile_pixels
from polychrome.files import atomic_path


def _figure(width: float, height: float):
    """A figure not registered with pyplot, so drawing never touches global backend state."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots()


def _ab_axes(ax, title: str) -> None:
    ax.set_xlim(-120, 120)
    ax.set_ylim(-120, 120)
    ax.set_aspect("equal")
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(title)
    ax.grid(True, linewidth=0.3, alpha=0.5)


def bin_colours(bins: Tensor, lightness: float = 50.0) -> np.ndarray:
    """The sRGB colour (Q, 3) in [0, 1] of each bin centre at the given L."""
    lab = torch.cat([torch.full((len(bins), 1), lightness), bins.float()], dim=1)
    return lab_to_rgb(lab.T[None, :, :, None])[0, :, :, 0].T.numpy()


def _squares(ax, bins: Tensor, colours) -> None:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    half = GRID / 2
    squares = [Rectangle((a - half, b - half), GRID, GRID) for a, b in bins.tolist()]
    ax.add_collection(PatchCollection(squares, facecolors=colours, edgecolors="white", linewidths=0.3))


def plot_gamut(bins: Tensor, path: str | Path, lightness: float = 50.0, title: str | None = None) -> None:
    """Draw the gamut's bins on the ab plane, each in its colour at L = ``lightness``."""
    fig, ax = _figure(6, 6)
    _squares(ax, bins, bin_colours(bins, lightness))
    _ab_axes(ax, title or f"{len(bins)} ab bins (grid {GRID}) at L={lightness:g}")
    fig.savefig(path, dpi=120, bbox_inches="tight")


def plot_prior(counts: np.ndarray | Tensor, bins: Tensor, path: str | Path, title: str = "ab prior") -> None:
    """Draw log10 of the empirical distribution over bins on the ab plane (empty bins in light gray)."""
    from matplotlib import colormaps, colors
    from matplotlib.cm import ScalarMappable

    counts = np.asarray(counts, dtype=np.float64)
    p = counts / max(counts.sum(), 1.0)
    seen = p > 0
    fig, ax = _figure(7, 6)
    log_p = np.log10(p[seen]) if seen.any() else np.array([0.0])
    norm = colors.Normalize(vmin=log_p.min(), vmax=log_p.max())
    cmap = colormaps["viridis"]
    facecolours = np.where(seen[:, None], cmap(norm(np.log10(np.where(seen, p, 1.0))))[:, :3], 0.9)
    _squares(ax, bins, facecolours)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="log10 p(ab bin)")
    _ab_axes(ax, title)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def plot_training_curves(
    runs: dict[str, dict[str, list[tuple[int, float]]]],
    path: str | Path,
    metrics: tuple[str, ...] = ("train/loss", "val/auc_raw", "val/auc_rebalanced"),
    baselines: dict[str, dict[str, float]] | None = None,
) -> None:
    """One panel per metric, one line per run; ``baselines`` ({name: {metric: value}}) as dashed lines."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * len(metrics), 4))
    axes = figure.subplots(1, len(metrics))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for name, series in runs.items():
            points = series.get(metric, [])
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=name, marker="o" if metric.startswith("val") else None, markersize=3)
        for name, measured in (baselines or {}).items():
            if metric in measured:
                ax.axhline(measured[metric], linestyle="--", color="gray", linewidth=1)
                ax.annotate(
                    name,
                    (0, measured[metric]),
                    xycoords=("axes fraction", "data"),
                    fontsize=8,
                    color="gray",
                    va="bottom",
                )
        ax.set_xlabel("step")
        ax.set_title(metric)
        ax.grid(True, linewidth=0.3)
        if metric == "train/loss":
            ax.set_yscale("log")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def plot_accuracy_curves(
    curves: dict[str, dict[str, list[float]]], path: str | Path, step: float = 1.0, title: str = ""
) -> None:
    """Zhang's cumulative accuracy curves (raw and rebalanced), one line per model; ``step`` is the
    threshold spacing of the values (Lab units). Saved without a Software tag: same curves, same bytes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("raw", "rebalanced"), strict=True):
        for k, (name, model_curves) in enumerate(curves.items()):
            values = model_curves[kind]
            ax.plot(
                np.arange(len(values)) * step,
                np.array(values) * 100,
                label=name,
                color=f"C{k % 10}",
                linestyle="-" if k < 10 else "--",
            )
        ax.set_xlabel("ab error threshold (Lab units)")
        ax.set_ylabel("% of pixels within threshold")
        ax.set_title(f"{title}{': ' if title else ''}{kind} accuracy")
        ax.grid(True, linewidth=0.3)
    axes[1].legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})


def plot_click_curves(results: list[dict], path: str | Path) -> None:
    """A simulated person's click curves (``polychrome.person``): PSNR, mean ab error and harm against the
    number of clicks, one line per model with ``result["clicks"]``; a model without (it takes no hints) as a
    dashed flat line at its PSNR and mean ab error. Saved without a Software tag: same curves, same bytes."""
    from matplotlib.figure import Figure

    clicked = [r for r in results if r.get("clicks")]
    most = max(len(r["clicks"]["curve"]) - 1 for r in clicked)
    figure = Figure(figsize=(12, 3.6), layout="constrained")
    axes = figure.subplots(1, 3)
    titles = {"psnr": "PSNR (dB)", "mean_ab_error": "mean ab error", "harm": "harm (% of pixels worse by > 10)"}
    for k, result in enumerate(results):
        style = {"color": f"C{k % 10}", "label": result["model"]}
        curve = result["clicks"]["curve"] if result.get("clicks") else None
        for ax, measure in zip(axes, titles, strict=True):
            if curve is None:
                if measure != "harm":
                    ax.plot([0, most], [result[measure]] * 2, linestyle="--", **style)
                continue
            points = [(p["clicks"], p[measure]) for p in curve if p[measure] is not None]
            scale = 100 if measure == "harm" else 1
            ax.plot([x for x, _ in points], [y * scale for _, y in points], marker="o", markersize=3, **style)
    person = clicked[0]["clicks"]["protocol"]["person"]
    for ax, title in zip(axes, titles.values(), strict=True):
        ax.set_xlabel(f"clicks ({person} person)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, linewidth=0.3)
    axes[0].legend(fontsize=8)
    figure.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})


def plot_error_histogram(errors: dict[str, list[float]], path: str | Path) -> None:
    """Histogram of per-image mean ab error, one outline per model."""
    fig, ax = _figure(6, 4)
    top = max((max(values) for values in errors.values() if values), default=1.0)
    for name, values in errors.items():
        ax.hist(values, bins=40, range=(0, top), histtype="step", label=name)
    ax.set_xlabel("mean ab error of an image (Lab units)")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def image_grid(
    rows: list[list[Tensor]],
    path: str | Path,
    column_titles: list[str],
    row_titles: list[str] | None = None,
    cell: float = 2.2,
) -> None:
    """A grid of uint8 RGB (3, H, W) images, ``cell`` inches each, titled by column (and row)."""
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), len(column_titles)
    figure = Figure(figsize=(cell * n_cols, cell * n_rows))
    axes = np.array(figure.subplots(n_rows, n_cols, squeeze=False))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            ax = axes[r, c]
            ax.imshow(image.permute(1, 2, 0).cpu().numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column_titles[c], fontsize=9)
            if c == 0 and row_titles:
                ax.set_ylabel(
                    textwrap.fill(row_titles[r], 16), fontsize=8, rotation=0, ha="right", va="center"
                )  # long names stay readable
    figure.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})


def _check_distribution_inputs(rgb: np.ndarray, probabilities: Tensor, bins: Tensor) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected rgb of shape (H, W, 3), got {rgb.shape}")
    if probabilities.dim() != 3:
        raise ValueError(f"expected probabilities of shape (Q, h, w), got {tuple(probabilities.shape)}")
    if probabilities.shape[0] != len(bins):
        raise ValueError(f"probabilities have {probabilities.shape[0]} bins but the gamut has {len(bins)}")
    if probabilities.shape[1] > rgb.shape[0] or probabilities.shape[2] > rgb.shape[1]:
        raise ValueError(f"probability grid {tuple(probabilities.shape[1:])} is larger than the image {rgb.shape[:2]}")
    sums = probabilities.sum(dim=0)
    if (probabilities < 0).any() or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise ValueError("probabilities must be non-negative and sum to 1 over bins (pass softmax(logits), not logits)")


def _distribution_colours(p: np.ndarray, bins: Tensor, lightness: float) -> np.ndarray:
    """Each bin's colour blended onto white by its probability, on a log scale of 3 decades below the mode."""
    strength = np.clip(1 + np.log10(np.maximum(p / p.max(), 1e-12)) / 3, 0, 1)
    alpha = (0.06 + 0.94 * strength)[:, None]  # a faint floor keeps the gamut's outline visible
    return 1 - alpha * (1 - bin_colours(bins, lightness))


def plot_pixel_distributions(
    rgb: np.ndarray,
    probabilities: Tensor,
    bins: Tensor,
    path: str | Path,
    pixels: list[tuple[int, int]] | None = None,
    lightness: float = 50.0,
    replace: bool = True,
) -> None:
    """Where is the model unsure: the image with numbered pixels, its entropy map, and each pixel's ab distribution.

    rgb: the colourised (H, W, 3) uint8 image; probabilities: (Q, h, w) softmax of the logits at the network's
    output resolution; bins: (Q, 2). ``pixels`` are full-resolution (row, col), each mapped to the output cell
    that covers it. By default three: the most certain, the median and the most uncertain output cell
    (``entropy_quantile_pixels``), marked at the cell's centre. Entropy is in nats (0 to ln Q). Saved as PNG,
    atomically; with ``replace=False`` an existing file is kept (FileExistsError).
    """
    from matplotlib.figure import Figure

    rgb = np.asarray(rgb)
    probabilities = probabilities.detach().float().cpu()
    _check_distribution_inputs(rgb, probabilities, bins)
    entropy = bin_entropy(probabilities[None])[0]
    pixels = _inspected_pixels(pixels, entropy, rgb.shape[:2])
    figure = Figure(figsize=(3.2 * max(len(pixels), 2), 6.6), layout="constrained")
    top, bottom = np.asarray(figure.subfigures(2, 1), dtype=object)
    _plot_image_and_entropy(top, rgb, entropy, pixels, len(bins))
    (height, width), (h, w) = rgb.shape[:2], probabilities.shape[1:]
    panels = np.atleast_1d(bottom.subplots(1, len(pixels)))
    for number, (ax, (row, col)) in enumerate(zip(panels, pixels, strict=True), 1):
        r, c = row * h // height, col * w // width  # the output cell that covers the pixel
        p = probabilities[:, r, c].numpy()
        mode = int(p.argmax())
        a, b = bins[mode].tolist()
        _squares(ax, bins, _distribution_colours(p, bins, lightness))
        ax.plot(a, b, marker="s", markersize=7, markerfacecolor="none", markeredgecolor="black")
        _ab_axes(
            ax,
            f"{number}: ({row}, {col})  H={float(entropy[r, c]):.2f} nats\nmode ab=({a:.0f}, {b:.0f}) p={p[mode]:.2f}",
        )
        ax.title.set_fontsize(9)

    with atomic_path(path, replace) as temporary:
        figure.savefig(temporary, format="png", dpi=110)


def _inspected_pixels(
    pixels: list[tuple[int, int]] | None, entropy: Tensor, size: tuple[int, int]
) -> list[tuple[int, int]]:
    """The full-resolution (row, col) to inspect: the caller's, checked, or the entropy quantiles' cell centres."""
    (height, width), (h, w) = size, entropy.shape
    if pixels is None:
        centres = entropy_quantile_pixels(entropy)
        pixels = [(int((r + 0.5) * height / h), int((c + 0.5) * width / w)) for r, c in centres]
    pixels = [(int(row), int(col)) for row, col in pixels]
    if not pixels:
        raise ValueError("pixels must name at least one (row, col)")
    for row, col in pixels:
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(f"pixel {(row, col)} lies outside the {height}x{width} image")
    return pixels


def _plot_image_and_entropy(top, rgb: np.ndarray, entropy: Tensor, pixels: list[tuple[int, int]], bins: int) -> None:
    """The colourised image and its entropy map side by side, the inspected pixels numbered on both."""
    from matplotlib import patheffects

    (height, width), (h, w) = rgb.shape[:2], entropy.shape
    image_ax, entropy_ax = top.subplots(1, 2)
    image_ax.imshow(rgb)
    image_ax.set_title("colourised")
    shown = entropy_ax.imshow(
        entropy.numpy(),
        extent=(0, width, height, 0),
        interpolation="nearest",
        cmap="magma",
        vmin=0,
        vmax=float(np.log(bins)),
    )
    top.colorbar(shown, ax=entropy_ax, label=f"entropy (nats; uniform = ln {bins})")
    entropy_ax.set_title(f"entropy of p(ab) at {h}x{w}")
    for ax in (image_ax, entropy_ax):
        ax.set_xticks([])
        ax.set_yticks([])
        for number, (row, col) in enumerate(pixels, 1):
            ax.plot(
                col,
                row,
                marker="o",
                markersize=11,
                markerfacecolor="none",
                markeredgecolor="white",
                markeredgewidth=2,
                path_effects=[patheffects.withStroke(linewidth=4, foreground="black")],
            )
            ax.annotate(
                str(number),
                (col, row),
                xytext=(6, 6),
                textcoords="offset points",
                color="white",
                fontweight="bold",
                bbox=dict(boxstyle="round,pad=0.15", facecolor="black", alpha=0.6, linewidth=0),
            )


BASELINE_STYLES = {"gray": "--", "random": ":", "mean": "-."}


def plot_levels(
    title: str,
    levels: list[str],
    panels: dict[str, dict[str, list]],
    references: dict[str, dict[str, dict[str, float]]],
    path: str | Path,
    xlabel: str = "",
) -> None:
    """One panel per metric: for each series (eval set), mean ± sd (or None) at each level; horizontal
    lines at the references (metric -> series -> baseline name -> value: gray dashed, random dotted, mean
    dash-dotted), in the series' colour. Written without a Software tag, so the same numbers give the
    same bytes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * len(panels), 3.6))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (metric, series) in zip(axes, panels.items(), strict=True):
        for k, (name, stats) in enumerate(series.items()):
            xs = [i for i, s in enumerate(stats) if s is not None]
            ax.errorbar(
                xs,
                [stats[i][0] for i in xs],
                yerr=[0 if np.isnan(stats[i][1]) else stats[i][1] for i in xs],
                marker="o",
                capsize=3,
                color=f"C{k}",
                label=name,
            )
            for baseline, value in references.get(metric, {}).get(name, {}).items():
                ax.axhline(
                    value,
                    color=f"C{k}",
                    linestyle=BASELINE_STYLES.get(baseline, "--"),
                    linewidth=0.8,
                    label=f"{baseline} ({name})",
                )
        ax.set_xticks(range(len(levels)), levels, rotation=20, ha="right")
        ax.set_xlabel(xlabel)
        ax.set_title(f"{title}: {metric.replace('_', ' ')}")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=100, bbox_inches="tight", metadata={"Software": None})


def plot_fool_rates(rates: list[dict], path: str | Path | BinaryIO) -> None:
    """A bar per model with its 95% interval and a line at 50% (indistinguishable from real), as PNG."""
    from matplotlib.figure import Figure

    shown = [r for r in rates if r["fool_rate"] is not None]
    figure = Figure(figsize=(1.2 + 1.1 * max(len(shown), 1), 3.6))
    ax = figure.subplots()
    heights = [100 * r["fool_rate"] for r in shown]
    errors = [
        [100 * (r["fool_rate"] - (r["ci_low"] if r["ci_low"] is not None else r["fool_rate"])) for r in shown],
        [100 * ((r["ci_high"] if r["ci_high"] is not None else r["fool_rate"]) - r["fool_rate"]) for r in shown],
    ]
    ax.bar(range(len(shown)), heights, yerr=errors, capsize=4, color="#6a8caf")
    ax.axhline(50, color="#444", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(shown)), [Path(r["model"]).name or r["model"] for r in shown], rotation=20, ha="right")
    ax.set_ylim(0, max([60.0] + [100 * (r["ci_high"] or 0) + 5 for r in shown]))
    ax.set_ylabel("fool rate (%)")
    ax.set_title("Picked as real (50% = indistinguishable)", fontsize=10)
    figure.savefig(path, format="png", dpi=110, bbox_inches="tight")
