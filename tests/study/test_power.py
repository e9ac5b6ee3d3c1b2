"""Power and seeds (``polychrome.study.power``): textbook values, agreement with simulated tests, and the plan of
the committed confirmatory studies (``study plan``) from their pilots' rows."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import t as student

from polychrome.cli import main
from polychrome.study.plan import plan, read_pilot
from polychrome.study.power import (
    detectable_difference,
    family_alpha,
    paired_power,
    power,
    sd_of_differences,
    seeds_needed,
    student_power,
    welch_power,
    welch_power_nct,
)
from polychrome.study.spec import load_study

ROOT = Path(__file__).resolve().parents[2]


def test_textbook_sample_sizes():
    # Cohen (1988) / G*Power: Student's two-sample t, d = 1, alpha 0.05 two-sided: 17 a side (power 0.807)
    assert student_power(17, 1.0, 1.0) == pytest.approx(0.807, abs=5e-4) and student_power(16, 1.0, 1.0) < 0.8
    assert seeds_needed(1.0, 1.0) == 17  # Welch's test, which estimates its df, a little below: 0.806
    assert welch_power(17, 1.0, 1.0) == pytest.approx(0.806, abs=5e-4)
    # paired t, d_z = 0.5: 34 pairs (power 0.808); d_z is the difference over the differences' spread
    assert paired_power(34, 0.5, 1.0) == pytest.approx(0.808, abs=5e-4)
    assert seeds_needed(0.5, 1.0, test="paired", correlation=0.5) == 34  # sd 1, r 0.5: differences' sd 1
    assert seeds_needed(0.5, 2**-0.5, test="paired") == 34  # sd 1/sqrt(2), r 0: the same
    # d = 0.5 two-sample: 64 a side (Cohen's table)
    assert seeds_needed(0.5, 1.0) == 64 and student_power(64, 0.5, 1.0) == pytest.approx(0.801, abs=5e-4)


def test_equal_spreads_give_students_test_and_no_difference_gives_alpha():
    for n in (3, 10):
        assert student_power(n, 0.0, 1.3, alpha=0.05) == pytest.approx(0.05, abs=1e-9)
        assert paired_power(n, 0.0, 0.7, alpha=0.01) == pytest.approx(0.01, abs=1e-9)
    # Welch's test is conservative at a few seeds (it estimates its degrees of freedom): size under alpha
    assert welch_power(3, 0.0, 1.0) == pytest.approx(0.0353, abs=5e-4) and welch_power(
        30, 0.0, 1.0, 2.0
    ) == pytest.approx(0.05, abs=5e-4)
    # far out in the noncentral t's tails (where scipy's nct.cdf gives NaN for some arguments) power is ~1
    assert 0.998 < welch_power_nct(3, 6.05, 0.427, 0.749, 0.0125) <= 1.0


def _simulated(n, difference, sd, sd_other, alpha, paired, correlation=0.0, replicates=20_000):
    """The fraction of simulated experiments in which the two-sided t-test rejects (seeded)."""
    rng = np.random.default_rng(0)
    if paired:
        cov = [[sd**2, correlation * sd * sd_other], [correlation * sd * sd_other, sd_other**2]]
        draws = rng.multivariate_normal([difference, 0.0], cov, size=(replicates, n))
        d = draws[..., 0] - draws[..., 1]
        statistic = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
        p = 2 * student.sf(np.abs(statistic), n - 1)
    else:
        a = rng.normal(difference, sd, (replicates, n))
        b = rng.normal(0.0, sd_other, (replicates, n))
        va, vb = a.var(1, ddof=1) / n, b.var(1, ddof=1) / n
        statistic = (a.mean(1) - b.mean(1)) / np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (n - 1))
        p = 2 * student.sf(np.abs(statistic), df)
    return float(np.mean(p <= alpha))


@pytest.mark.parametrize(
    "n, difference, sd, sd_other, alpha, test, correlation",
    [
        (11, 1.0, 0.427, 0.749, 0.0125, "welch", 0.0),  # the CIFAR-10 design's spreads
        (8, 0.5, 0.241, 0.241, 0.0125, "welch", 0.0),  # the 64 px design's
        (3, 1.0, 0.5, 0.5, 0.05, "welch", 0.0),
        (2, 1.0, 0.5, 1.0, 0.05, "welch", 0.0),
        (6, 0.5, 0.5, 0.5, 0.05, "paired", 0.6),
        (11, 1.0, 0.427, 0.749, 0.0125, "paired", 0.0),
    ],
)
def test_power_matches_simulated_tests(n, difference, sd, sd_other, alpha, test, correlation):
    computed = power(n, difference, sd, sd_other, alpha, test, correlation)
    simulated = _simulated(n, difference, sd, sd_other, alpha, test == "paired", correlation)
    assert computed == pytest.approx(simulated, abs=0.01)  # 20,000 replicates: standard error under 0.0036


def test_the_noncentral_t_shortcut_overstates_welchs_power_at_a_few_seeds():
    # the 64 px design: 7 seeds a side would pass at 80% by the shortcut, and fall short in fact
    shortcut, exact = welch_power_nct(7, 0.5, 0.241, alpha=0.0125), welch_power(7, 0.5, 0.241, alpha=0.0125)
    assert shortcut > 0.8 > exact
    assert exact == pytest.approx(_simulated(7, 0.5, 0.241, 0.241, 0.0125, False), abs=0.01)


def test_detectable_difference_inverts_power():
    found = detectable_difference(10, 0.427, 0.749, 0.0125, 0.9)
    assert welch_power(10, found, 0.427, 0.749, 0.0125) == pytest.approx(0.9, abs=1e-6)
    assert detectable_difference(10, 0.5, test="paired", correlation=0.9) < detectable_difference(10, 0.5)


def test_the_family_and_bad_arguments():
    assert family_alpha(0.05, 4) == family_alpha(0.05, 4, "bonferroni") == 0.0125
    assert sd_of_differences(1.0) == pytest.approx(2**0.5) and sd_of_differences(1.0, correlation=1.0) == 0.0
    with pytest.raises(ValueError, match="correction must be one of holm, bonferroni, got 'sidak'"):
        family_alpha(0.05, 3, "sidak")
    with pytest.raises(ValueError, match="at least one comparison"):
        family_alpha(0.05, 0)
    with pytest.raises(ValueError, match="at least 2 seeds an arm, got 1"):
        welch_power(1, 1.0, 1.0)
    with pytest.raises(ValueError, match="spread over seeds must be positive"):
        paired_power(5, 1.0, 0.0)
    with pytest.raises(ValueError, match="correlation must be between -1 and 1"):
        sd_of_differences(1.0, correlation=1.5)
    with pytest.raises(ValueError, match="test must be one of welch, paired, got 'mann-whitney'"):
        power(5, 1.0, 1.0, test="mann-whitney")
    with pytest.raises(ValueError, match="not even 3 seeds"):
        seeds_needed(0.1, 1.0, most=3)


def test_the_pilot_spreads_come_from_the_screenings_rows():
    pilot = read_pilot(ROOT / "configs/study/zhang-cifar10.yaml", "cifar10-test")
    assert pilot.base == pytest.approx((63.894, 62.599, 63.897), abs=1e-3) and pilot.base_sd == pytest.approx(
        0.749, abs=1e-3
    )
    assert pilot.levels == 25 and pilot.pooled_df == 50  # every trained level but the base, 3 seeds each
    assert pilot.pooled_sd == pytest.approx(0.427, abs=1e-3)
    assert abs(pilot.correlation) < 0.2  # the same seed does not pair a level with the base
    with pytest.raises(ValueError, match="has no evaluation set 'imagenet'; its sets: cifar10-test, bsds500-test"):
        read_pilot(ROOT / "configs/study/zhang-cifar10.yaml", "imagenet")


@pytest.mark.parametrize("name", ["confirm-leads", "confirm-leads-64px"])
def test_each_confirmatory_study_registers_the_seeds_its_plan_needs(name):
    path = ROOT / "configs" / "study" / f"{name}.yaml"
    found = plan(path)
    registered = load_study(path).preregistration
    assert registered is not None and len(registered.seeds) == found.seeds
    assert f"**Design: {found.seeds} seeds an arm.**" in found.markdown and "which meets it" in found.markdown


def test_study_plan_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    spec = yaml.safe_load((ROOT / "configs/study/confirm-leads.yaml").read_text())
    spec |= {"name": "planned", "results_root": str(tmp_path), "base": str(ROOT / "configs/cifar10-eccv16.yaml")}
    spec["preregistration"]["power"]["pilot"] = str(ROOT / "configs/study/zhang-cifar10.yaml")
    study = tmp_path / "planned.yaml"
    study.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["study", "plan", str(study)]) == 0
    out = capsys.readouterr().out
    assert "| seeds an arm | Welch: 80% power | Welch: 90% power | paired: 80% power | paired: 90% power |" in out
    assert (tmp_path / "planned" / "plan.webp").stat().st_size > 10_000 and (tmp_path / "planned" / "plan.md").exists()
    assert main(["study", "plan", str(ROOT / "configs/study/zhang-cifar10.yaml")]) == 2
    assert "has no preregistration.power: name a pilot study" in capsys.readouterr().err
