"""The study figures read at the docs' width: no text under TEXT points, a sweep over decades on a log axis,
accuracy curves drawn as differences from the base with a Welch interval, and levels that share an x side by side.
Each is checked on the matplotlib Figure a plotting function returns (made-up numbers, nothing trained)."""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.text import Text
from scipy.stats import t, ttest_ind

from polychrome.study import figures
from polychrome.study.figures import TEXT, WIDTH

TEMPERATURES = {"0.01": 0.01, "0.1": 0.1, "0.2": 0.2, "0.38": 0.38, "0.6": 0.6, "1.0": 1.0}
REFERENCES = {
    m: {"cifar": {"gray": 60.0, "random": 58.0}, "photos": {"gray": 61.0}} for m in ("auc_rebalanced", "auc_raw")
}


def _factor(tmp_path, levels: list[str], swept: dict[str, float]):
    panels = {
        m: {e: [(62.0 + i + k, 0.5, 3) for i in range(len(levels))] for k, e in enumerate(("cifar", "photos"))}
        for m in REFERENCES
    }
    return figures.plot_factor("temperature", levels, panels, REFERENCES, swept, tmp_path / "factor.webp")


def _curves(tmp_path):
    """Base, a level 2 points above it at every threshold (three seeds a side) and a baseline (one row)."""
    rng = np.random.default_rng(0)
    base = 0.5 + 0.01 * rng.standard_normal((3, 31))
    model = {
        "gray": {"rebalanced": base[:1] - 0.05, "raw": base[:1] - 0.05},
        "base": {"rebalanced": base, "raw": base},
        "level": {"rebalanced": base + 0.02, "raw": base + 0.02},
    }
    curves = {name: {kind: c.tolist() for kind, c in kinds.items()} for name, kinds in model.items()}
    return figures.plot_curve_grid(curves, "base", tmp_path / "curves.webp", 5, "fusion, cifar")


def _cost(tmp_path):
    same = ((4e12, 1e11, 3), (63.0, 0.4, 3), False)  # a decode-only factor: every level at one compute
    factors = {
        "temperature": {t: same for t in TEMPERATURES} | {"0.38": ((4e12, 1e11, 3), (63.5, 0.4, 3), True)},
        "width": {"x0.5": ((1e12, 0, 3), (62.0, 0.3, 3), False), "x1": ((4e12, 0, 3), (63.5, 0.4, 3), True)},
        "depth": {"7 blocks": ((4e12, 0, 3), (63.5, 0.4, 3), True)},
    }
    budget = [(images, images * 4e7, 63.5 + images / 1e5) for images in (100_000, 200_000, 300_000, 400_000)]
    return figures.plot_cost(factors, budget, {}, "rebalanced AuC against compute, cifar", tmp_path / "cost.webp")


def _drawn(tmp_path):
    """Every figure the study's report and plan draw, from made-up numbers."""
    budget = {m: {e: [(100_000, 63.0), (200_000, 64.0)] for e in ("cifar", "photos")} for m in REFERENCES}
    own = {m: {"cifar": (96_000, (62.5, 0.5, 3))} for m in REFERENCES}
    power = {(d, t): [0.1 * n for n in range(2, 10)] for d in (0.5, 1.0) for t in ("welch", "paired")}
    return {
        "factor": _factor(tmp_path, list(TEMPERATURES), TEMPERATURES),
        "curves": _curves(tmp_path),
        "cost": _cost(tmp_path),
        "budget": figures.plot_budget(budget, own, REFERENCES, tmp_path / "budget.webp"),
        "power": figures.plot_power(list(range(2, 10)), power, 5, 0.8, tmp_path / "plan.webp"),
    }


def test_no_text_in_any_study_figure_is_smaller_than_text_and_none_is_wider_than_the_docs(tmp_path):
    for name, figure in _drawn(tmp_path).items():
        texts = figure.findobj(
            lambda a: (
                isinstance(a, Text) and a.get_visible() and a.get_text() and (a.axes is None or a.axes.get_visible())
            )
        )
        small = sorted({f"{t.get_text()!r} {t.get_fontsize()}" for t in texts if t.get_fontsize() < TEXT})
        assert texts and not small, f"{name}: {small}"
        assert figure.get_size_inches()[0] <= WIDTH + 1e-9, name
        assert (tmp_path / f"{'plan' if name == 'power' else name}.webp").is_file()


def test_a_sweep_over_decades_is_on_a_log_axis_at_its_values_and_categories_are_evenly_spaced(tmp_path):
    swept = _factor(tmp_path, list(TEMPERATURES), TEMPERATURES).axes[0]
    assert swept.get_xscale() == "log" and figures.on_log_axis(list(TEMPERATURES), TEMPERATURES)
    assert np.allclose(swept.get_xticks(), list(TEMPERATURES.values()))
    assert [t.get_text() for t in swept.get_xticklabels()] == list(TEMPERATURES)
    categories = _factor(tmp_path, ["on", "off", "x2"], {}).axes[0]
    assert categories.get_xscale() == "linear" and list(categories.get_xticks()) == [0, 1, 2]


def test_the_evaluation_sets_at_a_level_and_levels_at_one_compute_are_drawn_side_by_side(tmp_path):
    ax = _factor(tmp_path, ["on", "off"], {}).axes[0]
    cifar, photos = (c.lines[0].get_xdata() for c in ax.containers)
    assert np.all(np.asarray(cifar) < np.arange(2)) and np.all(np.asarray(photos) > np.arange(2))
    temperature = _cost(tmp_path).axes[0]
    at = [float(c.lines[0].get_xdata()[0]) for c in temperature.containers]
    assert len(set(at)) == len(TEMPERATURES)  # six levels at one compute, none on top of another
    assert np.isclose(np.mean(np.log10(at)), np.log10(4e12))  # spread about that compute
    assert np.allclose(np.diff(sorted(np.log10(at))), figures.COST_DODGE)


def test_a_cost_axis_under_a_decade_wide_still_labels_its_compute(tmp_path):
    """Two levels at 2.2e12 and 5.4e12 (one conv per block against the base) hold no power of ten to label."""
    levels = {"1 conv": ((2.2e12, 0, 8), (66.3, 0.45, 8), False), "base": ((5.4e12, 0, 8), (65.7, 0.2, 8), True)}
    ax = figures.plot_cost({"thickness": levels}, [], {}, "cost", tmp_path / "cost.webp").axes[0]
    figure = ax.get_figure()
    assert figure is not None
    figure.canvas.draw()
    low, high = ax.get_xlim()
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
    assert len(shown) >= 2 and all("e12" in label for label in shown), shown


def test_accuracy_curves_are_drawn_as_differences_from_the_base_with_a_band_for_the_levels(tmp_path):
    baseline, base, level = _curves(tmp_path).axes[:3]
    assert [ax.get_title() for ax in (baseline, base, level)] == ["gray", "base", "level"]
    for line in base.get_lines()[1:]:  # after the zero line: rebalanced and raw, the base minus itself
        assert np.all(line.get_ydata() == 0)
    assert not [c for c in base.collections if isinstance(c, PolyCollection)]
    for line in level.get_lines()[1:]:
        assert np.allclose(line.get_ydata(), 2.0)  # 2 percentage points above the base at every threshold
    assert len([c for c in level.collections if isinstance(c, PolyCollection)]) == 2


def test_the_band_is_welchs_95_percent_interval_of_the_difference_of_means():
    rng = np.random.default_rng(1)
    level, base = rng.normal(1.0, 0.5, (3, 4)), rng.normal(0.0, 0.2, (4, 4))
    shift, half = figures.difference(level, base)
    for j in range(4):
        interval = ttest_ind(level[:, j], base[:, j], equal_var=False).confidence_interval(0.95)
        assert shift[j] - half[j] == pytest.approx(interval.low) and shift[j] + half[j] == pytest.approx(interval.high)
    _, half = figures.difference(level[:1], base)  # a baseline, one row, counts as exact: the base's spread alone
    assert half == pytest.approx(t.ppf(0.975, 3) * base.std(axis=0, ddof=1) / 2)
    assert figures.difference(level[:1], base[:1])[1] is None  # one seed a side: no interval
