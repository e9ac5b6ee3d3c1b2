"""How many seeds a comparison needs: the power of Welch's and of the paired t-test, computed (not simulated)
at the per-comparison level a family's correction leaves.

A study's replication is its seeds: each arm (a level, or the base) is trained once per seed and measured
once, so a comparison of two arms is a two-sample t-test on n values a side (Welch's, as the reports test),
or, when the two arms' values are paired by seed, a one-sample t-test on the n differences.

- **Welch's test, unpaired.** With spreads ``sd`` and ``sd_other`` (the two arms' standard deviations over
  seeds) and n seeds a side, the difference of the means is normal, independent of the two sample variances
  (each a scaled chi-square with n - 1 degrees of freedom), which set both the test's standard error and its
  Welch-Satterthwaite degrees of freedom. ``welch_power`` integrates the normal probability of rejecting over
  those two variances (Gauss-Laguerre quadrature): exact, where the usual shortcut, the noncentral t with the
  degrees of freedom at the true spreads, overstates Welch's power at a few seeds (0.807 against 0.787 at 7
  seeds a side in the 64 px design; ``welch_power_nct``, kept to show it).
- **Student's two-sample test** (equal spreads, pooled variance; ``student_power``): the noncentral t with
  2n - 2 degrees of freedom and noncentrality ``difference / (sd * sqrt(2 / n))``, the textbook case.
- **Paired.** The n per-seed differences have spread ``sd_of_differences(sd, sd_other, correlation)``; the
  statistic is noncentral t with n - 1 degrees of freedom and noncentrality
  ``difference * sqrt(n) / sd_of_differences``. Pairing pays only when the arms' values are correlated over
  seeds (a decode-only level reads its base's checkpoint: nearly 1); with a correlation of 0 it has the
  same noncentrality as Welch's test and half the degrees of freedom, so less power.
- **The family.** Holm's step-down correction over m comparisons rejects a hypothesis whenever Bonferroni's
  (each p against alpha / m) does, so planning each comparison at ``alpha / m`` is exact for Bonferroni and
  conservative for Holm (``family_alpha``).

Two-sided tests throughout (as the reports': a level may be worse than the base). Checked against textbook
values (Cohen 1988; G*Power): Student's two-sample test, d = 1, alpha 0.05, power 0.8 needs 17 a side;
paired, d = 0.5, 34 pairs; and every test against seeded simulations of it in the tests.
"""

from __future__ import annotations

import functools
import math

CORRECTIONS = ("holm", "bonferroni")
TESTS = ("welch", "paired")


def family_alpha(alpha: float, comparisons: int, correction: str = "holm") -> float:
    """The two-sided level at which to plan each comparison of a family of ``comparisons`` under
    ``correction``: ``alpha / comparisons`` for both (Bonferroni's exact level; a lower bound on Holm's
    power, whose first step is Bonferroni's and whose later steps only relax it).

    Args:
        alpha: the family-wise error rate, in (0, 1).
        comparisons: the family's size, at least 1.
        correction: ``holm`` or ``bonferroni``.

    Example:
        >>> family_alpha(0.05, 4)
        0.0125
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if comparisons < 1:
        raise ValueError(f"a family has at least one comparison, got {comparisons}")
    return alpha / comparisons


def sd_of_differences(sd: float, sd_other: float | None = None, correlation: float = 0.0) -> float:
    """The spread of per-seed differences between two arms with spreads ``sd`` and ``sd_other`` (default:
    ``sd``) whose values correlate over seeds by ``correlation`` (in [-1, 1]):
    sqrt(sd**2 + sd_other**2 - 2 * correlation * sd * sd_other).

    Example:
        >>> round(sd_of_differences(1.0, correlation=0.5), 6)
        1.0
    """
    other = sd if sd_other is None else sd_other
    if not -1 <= correlation <= 1:
        raise ValueError(f"correlation must be between -1 and 1, got {correlation}")
    return math.sqrt(max(0.0, sd**2 + other**2 - 2 * correlation * sd * other))


def _two_sided_power(df: float, noncentrality: float, alpha: float) -> float:
    from scipy.stats import nct
    from scipy.stats import t as student

    critical = student.ppf(1 - alpha / 2, df)
    # P(T > c) + P(T < -c); the second as P(-T > c), -T being noncentral t with -noncentrality: scipy's
    # nct.cdf far in the lower tail returns NaN for some arguments, its sf there does not
    return float(nct.sf(critical, df, noncentrality) + nct.sf(critical, df, -noncentrality))


def student_power(n: int, difference: float, sd: float, alpha: float = 0.05) -> float:
    """Power of the two-sided Student two-sample t-test (pooled variance) with ``n`` seeds in each arm, both
    of spread ``sd``, to find a true ``difference``, at level ``alpha``: the noncentral t.

    Example:
        >>> round(student_power(17, 1.0, 1.0), 3)  # Cohen's d = 1: 17 a side for 80%
        0.807
    """
    _check(n, sd, alpha)
    return _two_sided_power(2 * n - 2, difference / (sd * math.sqrt(2 / n)), alpha)


def welch_power(n: int, difference: float, sd: float, sd_other: float | None = None, alpha: float = 0.05) -> float:
    """Power of the two-sided Welch t-test with ``n`` seeds in each arm to find a true ``difference`` between
    the arms' means, their spreads over seeds ``sd`` and ``sd_other`` (default: ``sd``), at level ``alpha``:
    exact, up to the quadrature's error (under 0.001 from 2 seeds on).

    Example:
        >>> round(welch_power(17, 1.0, 1.0), 3)  # a little under Student's 0.807: Welch estimates its df
        0.806
    """
    _check(n, sd, alpha)
    weights, threshold, spread = _welch_grid(n, sd, sd if sd_other is None else sd_other, alpha)
    from scipy.stats import norm

    rejected = norm.cdf((difference - threshold) / spread) + norm.cdf((-difference - threshold) / spread)
    return float(min(1.0, (weights * rejected).sum()))


QUADRATURE_NODES = 64


@functools.lru_cache(maxsize=256)
def _welch_grid(n: int, sd: float, other: float, alpha: float):
    """What of Welch's power does not depend on the difference: the quadrature's weights over the two sample
    variances, the test's rejection threshold on the difference of means at each (its critical t at that
    node's degrees of freedom times its standard error), and the true spread of the difference of means."""
    import numpy as np
    from scipy.special import gammaln, roots_genlaguerre
    from scipy.stats import t as student

    # chi-square with n - 1 df is 2 x Gamma((n - 1) / 2): generalised Gauss-Laguerre nodes for that gamma
    shape = (n - 1) / 2
    nodes, weights = roots_genlaguerre(QUADRATURE_NODES, shape - 1)
    weights = weights / math.exp(gammaln(shape))
    chi2 = 2 * nodes
    a = sd**2 * chi2[:, None] / (n - 1) / n  # the squared standard error each arm contributes
    b = other**2 * chi2[None, :] / (n - 1) / n
    df = (a + b) ** 2 / ((a**2 + b**2) / (n - 1))
    threshold = student.ppf(1 - alpha / 2, df) * np.sqrt(a + b)
    return weights[:, None] * weights[None, :], threshold, math.sqrt((sd**2 + other**2) / n)


def welch_power_nct(n: int, difference: float, sd: float, sd_other: float | None = None, alpha: float = 0.05) -> float:
    """The common shortcut for Welch's power, shown for comparison only: the noncentral t with the
    Welch-Satterthwaite degrees of freedom at the true spreads. It overstates the power at a few seeds,
    since the test estimates its degrees of freedom from the seeds (``welch_power`` is exact)."""
    _check(n, sd, alpha)
    other = sd if sd_other is None else sd_other
    a, b = sd**2 / n, other**2 / n
    df = (a + b) ** 2 / ((a**2 + b**2) / (n - 1))
    return _two_sided_power(df, difference / math.sqrt(a + b), alpha)


def paired_power(n: int, difference: float, sd_difference: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test on ``n`` per-seed differences of spread ``sd_difference``
    (``sd_of_differences``) to find a true mean ``difference``, at level ``alpha``.

    Example:
        >>> round(paired_power(34, 0.5, 1.0), 3)  # d_z = 0.5: 34 pairs for 80%
        0.808
    """
    _check(n, sd_difference, alpha)
    return _two_sided_power(n - 1, difference * math.sqrt(n) / sd_difference, alpha)


def _check(n: int, sd: float, alpha: float) -> None:
    if n < 2:
        raise ValueError(f"a t-test needs at least 2 seeds an arm, got {n}")
    if not sd > 0:
        raise ValueError(f"the spread over seeds must be positive, got {sd}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")


def power(
    n: int,
    difference: float,
    sd: float,
    sd_other: float | None = None,
    alpha: float = 0.05,
    test: str = "welch",
    correlation: float = 0.0,
) -> float:
    """``welch_power`` or ``paired_power`` (the differences' spread from ``sd``, ``sd_other`` and
    ``correlation``), by ``test``."""
    if test == "welch":
        return welch_power(n, difference, sd, sd_other, alpha)
    if test == "paired":
        return paired_power(n, difference, sd_of_differences(sd, sd_other, correlation), alpha)
    raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")


def seeds_needed(
    difference: float,
    sd: float,
    sd_other: float | None = None,
    alpha: float = 0.05,
    target: float = 0.8,
    test: str = "welch",
    correlation: float = 0.0,
    most: int = 10_000,
) -> int:
    """The fewest seeds an arm (at least 2) at which ``test`` finds a true ``difference`` with power at least
    ``target``; raises when even ``most`` do not.

    Example:
        >>> seeds_needed(1.0, 1.0)
        17
        >>> seeds_needed(0.5, 1.0, test="paired", correlation=0.5)
        34
    """
    for n in range(2, most + 1):
        if power(n, difference, sd, sd_other, alpha, test, correlation) >= target:
            return n
    raise ValueError(f"not even {most} seeds an arm find a difference of {difference} with power {target}")


def detectable_difference(
    n: int,
    sd: float,
    sd_other: float | None = None,
    alpha: float = 0.05,
    target: float = 0.8,
    test: str = "welch",
    correlation: float = 0.0,
) -> float:
    """The smallest true difference that ``test`` with ``n`` seeds an arm finds with power ``target`` (the
    minimal detectable difference, in the measure's units).

    Example:
        >>> round(detectable_difference(17, 1.0), 3)
        0.993
    """
    from scipy.optimize import brentq

    spread = sd_of_differences(sd, sd_other, correlation) if test == "paired" else math.hypot(sd, sd_other or sd)
    high = spread
    while power(n, high, sd, sd_other, alpha, test, correlation) < target:
        high *= 2
    return float(brentq(lambda d: power(n, d, sd, sd_other, alpha, test, correlation) - target, 0.0, high, xtol=1e-9))
