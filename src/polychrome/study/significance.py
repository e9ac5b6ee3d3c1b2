"""Which differences a study may call: each level against the base's all-seed mean, by Welch's t-test
between the level's seeds and the base's seeds, with Holm's correction over every comparison of the study.
A level that shares its trainings with the base (a decode-only level: the temperature decodes the base's own
checkpoints) is tested paired by seed instead.

Why these: seeds are the only replication the rows hold (one value per seed and measure), the level and
the base need not have the same spread or number of seeds (Welch does not pool their variances), and a
study makes dozens of comparisons at once, so an uncorrected p below 0.05 is expected several times by
chance. Where a level and the base are two decodings of one training, their values at a seed share that
training's luck; Welch would count it twice as noise, the paired test removes it. Holm's step-down correction keeps the chance of calling any false difference under ``ALPHA``
whatever the comparisons' dependence, and is uniformly more powerful than Bonferroni's.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass, replace

ALPHA = 0.05  # family-wise error rate over all comparisons of a study


def welch_p(level: list[float], base: list[float]) -> float | None:
    """Two-sided p of Welch's t-test between two sets of seed values; None when either has fewer than
    two seeds (no spread to test against); 1.0 when both are constant and equal, 0.0 when constant
    and different (scipy returns NaN there: no variance to divide by)."""
    from scipy.stats import ttest_ind

    if len(level) < 2 or len(base) < 2:
        return None
    if statistics.pvariance(level) == 0 and statistics.pvariance(base) == 0:
        return 1.0 if statistics.fmean(level) == statistics.fmean(base) else 0.0
    with warnings.catch_warnings():  # near-equal values: scipy warns of precision loss, the p is still its best
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(level, base, equal_var=False).pvalue)


def paired_p(level: list[float], base: list[float]) -> float | None:
    """Two-sided p of the paired t-test between two lists of values matched by position (one seed each); None
    with fewer than two pairs; 1.0 when every pair agrees, 0.0 when every pair differs by one constant."""
    from scipy.stats import ttest_rel

    if len(level) != len(base):
        raise ValueError(f"a paired test needs matched values, got {len(level)} and {len(base)}")
    if len(level) < 2:
        return None
    differences = [a - b for a, b in zip(level, base, strict=True)]
    if statistics.pvariance(differences) == 0:
        return 1.0 if differences[0] == 0 else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_rel(level, base).pvalue)


TESTS = {"welch": "Welch", "paired": "paired t"}  # a comparison's test, as the reports name it


def change_p(
    level_then: list[float], base_then: list[float], level_now: list[float], base_now: list[float]
) -> float | None:
    """Two-sided p that a level's difference from the base is the same in two studies (say, two budgets): the
    change of the difference over its standard error, with Welch-Satterthwaite degrees of freedom, the four
    sets of seeds being independent trainings. With no spread in the first study it is Welch's test of the
    second. None when any set has fewer than two seeds; 1.0 or 0.0 when none varies (as ``welch_p``)."""
    from scipy.stats import t as student

    groups = (level_now, base_now, level_then, base_then)
    if any(len(g) < 2 for g in groups):
        return None
    change = statistics.fmean(level_now) - statistics.fmean(base_now)
    change -= statistics.fmean(level_then) - statistics.fmean(base_then)
    parts = [statistics.variance(g) / len(g) for g in groups]
    if sum(parts) == 0:
        return 1.0 if change == 0 else 0.0
    df = sum(parts) ** 2 / sum(v**2 / (len(g) - 1) for v, g in zip(parts, groups, strict=True))
    return float(2 * student.sf(abs(change) / math.sqrt(sum(parts)), df))


def holm(pvalues: list[float]) -> list[float]:
    """Holm (1979) adjusted p-values, in the input order: the k-th smallest of m is multiplied by
    (m - k + 1), made non-decreasing in that order and capped at 1. A hypothesis is rejected at level
    alpha exactly when its adjusted p is <= alpha."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Comparison:
    """One level against the base on one evaluation set and measure."""

    level_values: tuple[float, ...]
    base_values: tuple[float, ...]
    higher_is_better: bool
    p: float | None = None  # two-sided, by ``test``; None: fewer than two seeds on a side (not tested)
    p_holm: float | None = None
    test: str = "welch"  # "welch", or "paired": level and base values matched by seed (TESTS)

    @property
    def difference(self) -> float:
        """Level mean minus base mean (the base's all-seed mean)."""
        return statistics.fmean(self.level_values) - statistics.fmean(self.base_values)

    @property
    def tested(self) -> bool:
        return self.p is not None

    @property
    def called(self) -> bool:
        """A difference survives Holm's correction."""
        return self.p_holm is not None and self.p_holm <= ALPHA

    @property
    def better(self) -> bool:
        """The level is better than the base (on the measure's own sense), whether called or not."""
        return self.difference > 0 if self.higher_is_better else self.difference < 0


def correct(comparisons: dict) -> dict:
    """The same comparisons with ``p_holm`` set: Holm over every tested one (``p`` not None; untested ones
    stay None). Any frozen dataclass with ``p`` and ``p_holm`` will do: a ``Comparison``, or the report's
    change of one between two budgets."""
    tested = [key for key, c in comparisons.items() if c.p is not None]
    adjusted = dict(zip(tested, holm([comparisons[key].p for key in tested]), strict=True))
    return {key: replace(c, p_holm=adjusted.get(key)) for key, c in comparisons.items()}


def compare(level: list[float], base: list[float], higher_is_better: bool, paired: bool = False) -> Comparison:
    """An uncorrected comparison (``correct`` sets its Holm p among the study's others); ``paired``: the two
    lists are matched by seed (the level decodes the base's own trainings) and tested so."""
    if paired:
        return Comparison(tuple(level), tuple(base), higher_is_better, paired_p(level, base), test="paired")
    return Comparison(tuple(level), tuple(base), higher_is_better, welch_p(level, base))


def format_p(p: float | None) -> str:
    """A p-value as the tables print it: three significant figures, or '<0.001'."""
    if p is None or math.isnan(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
