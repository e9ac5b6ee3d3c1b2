"""A study's rows as the numbers its report states: per-seed values, means and spreads, the base's all-seed
values, and every level's comparison with them (``significance``), Holm-corrected over the whole study.

The base is the study's base config with no override, trained once per seed; every factor that lists it
(a level of ``[]``, or the decode-only level at the base's temperature) shows the same rows. Its values
are pooled over every seed that has rows, whichever factor wrote them, and every other level is compared
with them, so a level with one seed is never set against the base's luckiest or unluckiest seed.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass

from polychrome.metrics import MEASURES
from polychrome.study.significance import Comparison, compare, correct
from polychrome.study.spec import Factor, Study, base_config

Stat = tuple[float, float, int]  # mean, sample sd (NaN with one seed), number of seeds


@dataclass(frozen=True)
class Measure:
    """A measure the report gives verdicts on: a measure of ``polychrome.metrics.MEASURES``, whose direction
    it takes from there (the colourfulness gap the report computes from each row, ``prepared``)."""

    column: str
    label: str

    @property
    def higher_is_better(self) -> bool:
        return MEASURES[self.column].better == "higher"


# The measures every level gets a verdict on, in the order of rows.INTERVAL_MEASURES (each row's test-set
# intervals). False colour is measured only in rows written since it was added; older rows leave it empty.
VERDICT_MEASURES = (
    Measure("auc_rebalanced", "rebalanced AuC"),
    Measure("auc_raw", "raw AuC"),
    Measure("psnr", "PSNR"),
    Measure("colorfulness_gap", "colourfulness distance to the truth"),
    Measure("false_color", "false colour"),
    Measure("segment_accuracy", "segment accuracy"),
    Measure("classifier_accuracy", "classifier accuracy"),
)
SUMMARISED = (
    "auc_rebalanced",
    "auc_raw",
    "psnr",
    "ssim",
    "colorfulness",
    "colorfulness_gap",
    "colorfulness_truth",
    "segment_accuracy",
    "classifier_accuracy",
    "false_color",
    "total_ab_error",
    "compute",
)


def number(text) -> float | None:
    return None if text in ("", None) else float(text)


def prepared(row: dict) -> dict:
    """A row with the two columns the report computes: ``colorfulness_gap``, |colourfulness - the truth's|
    (lower is better: too much colour is as wrong as too little), and ``compute``, MACs per image x the
    training images it had seen (its budget-curve point, or its budget)."""
    colourfulness, truth = number(row.get("colorfulness")), number(row.get("colorfulness_truth"))
    macs, images = number(row.get("macs")), number(row.get("checkpoint_images") or row.get("train_images"))
    return row | {
        "colorfulness_gap": "" if colourfulness is None or truth is None else repr(abs(colourfulness - truth)),
        "compute": "" if macs is None or images is None else repr(macs * images),
    }


def mean_sd(values: list[float]) -> Stat:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else float("nan"), len(values)


def sweep(study: Study, factor: Factor) -> dict[str, float]:
    """The levels of ``factor`` that form an ordered sweep, with their values: those that each set the same
    one setting to a number (the base level its value in the base config; levels that set anything else,
    like plain CE beside a sweep of lambda, stay out), in the study file's order,
    when those values rise or fall monotonically and there are at least three. Empty otherwise: the
    levels are categories, and a figure must not join them with a line."""
    settings = {level: [s.split("=", 1) for s in sets] for level, sets in factor.levels.items()}
    keys = {pairs[0][0] for pairs in settings.values() if len(pairs) == 1 and _float(pairs[0][1]) is not None}
    if len(keys) != 1:
        return {}
    (key,) = keys
    values = {}
    for level, pairs in settings.items():
        value = (
            _base_value(study, key)
            if not pairs
            else _float(pairs[0][1])
            if len(pairs) == 1 and pairs[0][0] == key
            else None
        )
        if value is not None:
            values[level] = value
    return values if len(values) >= 3 and trend(list(values.values())) != "not monotonic" else {}


def trend(values: list[float]) -> str:
    """'rises throughout', 'falls throughout' or 'not monotonic'."""
    steps = [b - a for a, b in itertools.pairwise(values)]
    return (
        "rises throughout"
        if all(s > 0 for s in steps)
        else "falls throughout"
        if all(s < 0 for s in steps)
        else "not monotonic"
    )


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _base_value(study: Study, key: str) -> float | None:
    """The base config's value of a dotted setting (``loss.mix``, ``temperature``, ``model.blocks``), if it is a
    number; a model option the config leaves unset has its builder's default."""
    config = base_config(study)
    if key.startswith("model.") and not hasattr(config.model, key.split(".", 1)[1]):
        value = _model_option(config.model.name, dict(config.model.options), key.split(".", 1)[1])
    else:
        try:
            value = functools.reduce(getattr, key.split("."), config)
        except AttributeError:
            return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _model_option(name: str, options: dict, option: str):
    from polychrome.models.registry import model_entry, resolve_options

    resolved = resolve_options(name, options)
    if option in resolved:
        return resolved[option]
    config_class = model_entry(name).config_class
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)} if config_class else {}
    return defaults.get(option)


class StudyNumbers:
    """Every number of a study's report, from its rows (``prepared``) and the study file."""

    def __init__(self, study: Study, rows: list[dict]):
        self.study, self.rows = study, [prepared(r) for r in rows]
        self.eval_sets = [e.name for e in study.evaluate]
        self.base_temperature = base_config(study).temperature
        self.values, self.value_seeds = self._values()
        self.base_copies = self._base_copies()
        self.base = {
            key: [copies[seed][0] for seed in sorted(copies, key=int)] for key, copies in self.base_copies.items()
        }
        self.comparisons = correct(
            {
                (factor.name, level, eval_set, m.column): comparison
                for factor in study.factors
                for level in factor.levels
                if not self.is_base(factor, level)
                for eval_set in self.eval_sets
                for m in VERDICT_MEASURES
                if (comparison := self._compare(factor, level, eval_set, m))
            }
        )

    def _compare(self, factor: Factor, level: str, eval_set: str, measure: Measure) -> Comparison | None:
        """A level against the base on one set and measure: Welch against the base's all-seed values, or, for a
        decode-only level (the base's own trainings decoded otherwise), paired by seed over the seeds both have."""
        key = (factor.name, level, eval_set, "", measure.column)
        values, base = self.values.get(key), self.base.get((eval_set, measure.column))
        if not values or not base:
            return None
        if not factor.decode_only:
            return compare(values, base, measure.higher_is_better)
        copies = self.base_copies[(eval_set, measure.column)]
        pairs = [
            (value, copies[seed][0])
            for seed, value in zip(self.value_seeds[key], values, strict=True)
            if seed in copies
        ]
        return compare([a for a, _ in pairs], [b for _, b in pairs], measure.higher_is_better, paired=True)

    def _values(self) -> tuple[dict[tuple, list[float]], dict[tuple, list[str]]]:
        """(factor, level, eval_set, checkpoint_images, column) -> the values over seeds, in seed order; and the
        same key -> those seeds."""
        values: dict[tuple, list[float]] = defaultdict(list)
        seeds: dict[tuple, list[str]] = defaultdict(list)
        for row in sorted(self.rows, key=lambda r: int(r["seed"])):
            for column in SUMMARISED:
                value = number(row.get(column))
                if value is not None:
                    key = (row["factor"], row["level"], row["eval_set"], row.get("checkpoint_images", ""), column)
                    values[key].append(value)
                    seeds[key].append(row["seed"])
        return dict(values), dict(seeds)

    def _base_copies(self) -> dict[tuple, dict[str, list[float]]]:
        """(eval_set, column) -> seed -> the base's value in every copy of its rows (the base level of each factor
        that trains), in row order. The copies of a seed evaluate one training and agree; the yardstick takes the
        first (``base``)."""
        seen: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for row in self.rows:
            factor = next((f for f in self.study.factors if f.name == row["factor"]), None)
            if (
                factor
                and not factor.decode_only
                and self.is_base(factor, row["level"])
                and not row.get("checkpoint_images")
            ):
                for column in SUMMARISED:
                    value = number(row.get(column))
                    if value is not None:
                        seen[(row["eval_set"], column)][row["seed"]].append(value)
        return {key: dict(by_seed) for key, by_seed in seen.items()}

    def base_disagreements(self) -> list[tuple[int, str]]:
        """(seed, eval_set) where the base's copies hold different numbers: rows of different trainings of one seed,
        as a ``--refresh`` that retrains leaves them until it has rewritten every copy."""
        return sorted(
            {
                (int(seed), eval_set)
                for (eval_set, _), copies in self.base_copies.items()
                for seed, values in copies.items()
                if max(values) - min(values) > 1e-9 * max(1.0, abs(values[0]))
            }
        )

    def is_base(self, factor: Factor, level: str) -> bool:
        """Whether a level is the base itself: no override, or (decode-only) the base's own temperature."""
        sets = factor.levels[level]
        if factor.decode_only:
            return [_float(s.split("=", 1)[1]) for s in sets] == [self.base_temperature]
        return not sets

    def base_level(self, factor: Factor) -> str | None:
        return next((level for level in factor.levels if self.is_base(factor, level)), None)

    def base_seeds(self) -> int:
        return max((len(v) for v in self.base.values()), default=0)

    def stat(self, factor: Factor, level: str, eval_set: str, column: str) -> Stat | None:
        """Mean, sd and seeds of a level (the base level: the base's over all its seeds)."""
        values = (
            self.base.get((eval_set, column))
            if self.is_base(factor, level)
            else self.values.get((factor.name, level, eval_set, "", column))
        )
        return mean_sd(values) if values else None

    def row_stat(self, factor: str, level: str, eval_set: str, column: str) -> Stat | None:
        """Mean, sd and seeds of the final rows of one (factor, level), taken as they are (the baselines)."""
        values = self.values.get((factor, level, eval_set, "", column))
        return mean_sd(values) if values else None

    def budget_curve(self, eval_set: str, column: str) -> list[tuple[int, float]]:
        """The base trained longer (the ``budget`` factor, one seed) as evaluated along the way: (training images
        seen, value), in order; empty for a study without it."""
        return sorted(
            (int(images), values[0])
            for (factor, _, e, images, c), values in self.values.items()
            if factor == "budget" and e == eval_set and c == column and images
        )

    def comparison(self, factor: Factor, level: str, eval_set: str, column: str) -> Comparison | None:
        return self.comparisons.get((factor.name, level, eval_set, column))

    def half_widths(
        self, eval_set: str, column: str, factor: str | None = None, level: str | None = None
    ) -> list[float]:
        """Half-widths of the 95% test-set intervals (``interval_<column>``) of the trained runs' final rows on
        ``eval_set`` that have one; of one (factor, level) when given."""
        widths = []
        for row in self.rows:
            text = row.get(f"interval_{column}")
            if (
                text
                and row["factor"] != "baseline"
                and not row.get("checkpoint_images")
                and row["eval_set"] == eval_set
                and (factor is None or (row["factor"], row["level"]) == (factor, level))
            ):
                low, high = map(float, text.split())
                widths.append((high - low) / 2)
        return widths

    def measured(self, column: str) -> tuple[int, int]:
        """(trained runs' rows with a value of ``column``, trained runs' rows): measures added later are
        missing from rows an older runner wrote."""
        trained = [r for r in self.rows if r["factor"] != "baseline"]
        return sum(number(r.get(column)) is not None for r in trained), len(trained)

    @property
    def tested(self) -> int:
        return sum(c.tested for c in self.comparisons.values())
