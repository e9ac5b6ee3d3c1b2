"""Two stages: a screening's report says it is exploratory; a confirmatory study's pre-registration is read
strictly, must be committed before its first run and stay unchanged, and its report prints it verbatim with
the one test it registered (made only once every registered seed is in) and what was not registered."""

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml
from scipy.stats import ttest_rel

from polychrome.study import load_study, write_report
from polychrome.study.preregistration import RegistrationError, family_results, register, registration_path
from polychrome.study.rows import COLUMNS
from polychrome.study.runner import run_study
from polychrome.study.summary import StudyNumbers

from .test_report import _row

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [10, 11, 12, 13]
PREREGISTRATION = """\
preregistration:
  # registered before the first run
  hypotheses:
    - {comparison: "thickness: 1 conv", expect: higher, statement: one conv per block scores higher}
    - {comparison: "upsampling: none", expect: higher}
  primary_endpoint: {measure: auc_rebalanced, eval_set: cifar}
  alpha: 0.05
  seeds: [10, 11, 12, 13]
  power: {pilot: pilot.yaml, difference: 1.0}
  stopping_rule: every arm at every seed, tested once
  exploratory: the other measures and sets
  command: polychrome study run confirm.yaml
"""


def _confirmatory(root: Path, preregistration: str = PREREGISTRATION, seeds=SEEDS) -> Path:
    (root / "base.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {"train": "folder:photos", "size": 16, "batch_size": 4},
                "model": {"name": "eccv16", "width": 0.125},
                "loss": {"kind": "rebalanced_ce"},
            }
        )
    )
    study = {
        "name": "confirm",
        "base": "base.yaml",
        "train_images": 1000,
        "results_root": str(root / "docs"),
        "runs_root": str(root / "runs"),
        "baselines": ["gray"],
        "evaluate": [{"name": "cifar", "data": "cifar10@test"}, {"name": "photos", "data": "folder:photos"}],
        "headline": [],
        "factors": {
            "thickness": {"seeds": seeds, "levels": {"1 conv": ["model.convs=1"], "ECCV16": []}},
            "upsampling": {"seeds": seeds, "levels": {"transposed": [], "none": ["model.upsamples=0"]}},
        },
    }
    path = root / "confirm.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False) + preregistration + "examples: 8\n")
    return path


def test_a_preregistration_loads_with_its_block_verbatim(tmp_path):
    study = load_study(_confirmatory(tmp_path))
    registered = study.preregistration
    assert study.stage == "confirmatory" and registered is not None
    assert [h.comparison for h in registered.hypotheses] == ["thickness: 1 conv", "upsampling: none"]
    assert (registered.hypotheses[0].factor, registered.hypotheses[0].level) == ("thickness", "1 conv")
    assert registered.test == "welch" and registered.correction == "holm" and registered.power.spread == "arms"
    assert registered.verbatim == PREREGISTRATION  # comments included, the next top-level key left out
    assert load_study(ROOT / "configs/study/zhang-cifar10.yaml").stage == "screening"


@pytest.mark.parametrize(
    "change, message",
    [
        (("alpha: 0.05", "alpha: 0.05\n  alfa: 0.01"), "unknown config key preregistration.alfa"),
        (("expect: higher}", "expect: higher, why: x}"), r"unknown config key preregistration.hypotheses\[1\].why"),
        (("difference: 1.0}", "difference: 1.0, sds: 2}"), "unknown config key preregistration.power.sds"),
        (("thickness: 1 conv", "thickness: 4 convs"), "'thickness: 4 convs' names no level of the study; levels: "),
        (('"upsampling: none"', '"upsampling: transposed"'), "must compare a trained level with the base"),
        (("seeds: [10, 11, 12, 13]", "seeds: [10, 11]"), r"factor thickness runs seeds \[10, 11, 12, 13\]"),
        (("eval_set: cifar}", "eval_set: imagenet}"), "must name one of the study's evaluation sets"),
        (("measure: auc_rebalanced", "measure: accuracy"), "primary_endpoint.measure must be one of auc_rebalanced"),
        (("alpha: 0.05", "alpha: 5"), "alpha must be between 0 and 1, got 5.0"),
        (("alpha: 0.05", "alpha: 0.05\n  test: ttest"), "test must be one of welch, paired, got 'ttest'"),
        (("expect: higher, statement", "expect: better, statement"), "expect must be higher or lower, got 'better'"),
        (("  stopping_rule: every arm at every seed, tested once\n", ""), "preregistration needs stopping_rule"),
        (("alpha: 0.05", "alpha: 0.05\n  verbatim: x"), "verbatim is set by the loader"),
        (("- {comparison", "- {comparison: x\n    - {comparison"), "not valid YAML"),
    ],
)
def test_a_preregistration_is_read_strictly(tmp_path, change, message):
    path = _confirmatory(tmp_path, PREREGISTRATION.replace(*change))
    with pytest.raises(ValueError, match=message):
        load_study(path)


def _git(root: Path, *words: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *words], cwd=root, check=True, capture_output=True
    )


def test_a_confirmatory_study_runs_only_committed_and_unchanged(tmp_path):
    path = _confirmatory(tmp_path)
    study = load_study(path)
    with pytest.raises(RegistrationError, match="is not committed in a git repository: commit it before its first run"):
        register(study, path)
    assert run_study(path, dry_run=True)  # listing its runs needs no registration
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "confirm.yaml")
    _git(tmp_path, "commit", "-qm", "register")
    path.write_text(path.read_text() + "# an afterthought\n")
    with pytest.raises(RegistrationError, match="has uncommitted changes"):
        register(study, path)
    _git(tmp_path, "checkout", "-q", "confirm.yaml")
    run_study(path, only="nothing-matches")  # nothing to run: no first run yet, nothing recorded
    assert not registration_path(study).exists()
    record = register(study, path)  # the first run records the commit and the file's hash
    assert record == register(study, path) and registration_path(study).exists()
    assert len(record["commit"]) == 40 and record["file"] == "confirm.yaml"
    path.write_text(path.read_text().replace("alpha: 0.05", "alpha: 0.1"))
    _git(tmp_path, "commit", "-qam", "a looser alpha, after the first run")
    with pytest.raises(RegistrationError, match="has changed since the study's first run"):
        register(study, path)


def _rows(seeds, lead=1.5):
    rows = [_row("baseline", "gray", 0, e, 61.0) for e in ("cifar", "photos")]
    for seed in seeds:
        wobble = (seed % 4) / 10
        for e in ("cifar", "photos"):
            base = 63.0 + wobble
            rows += [_row(f, lv, seed, e, base) for f, lv in (("thickness", "ECCV16"), ("upsampling", "transposed"))]
            rows.append(_row("thickness", "1 conv", seed, e, base + lead - wobble / 2))
            rows.append(_row("upsampling", "none", seed, e, base + 0.1 - wobble))
    return rows


def _write_rows(path: Path, rows: list[dict]) -> None:
    folder = load_study(path).results_dir
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_the_report_prints_the_registration_tests_the_family_once_and_says_what_was_not_registered(
    tmp_path, monkeypatch
):
    from polychrome.study import figures

    for name in ("plot_factor", "plot_cost", "plot_curve_grid", "plot_budget"):  # the text is what is tested here
        monkeypatch.setattr(figures, name, lambda *args, **kwargs: None)
    path = _confirmatory(tmp_path)
    text = write_report(path).read_text()
    assert "**Stage: confirmatory (pre-registered).**" in text and "**Confirmatory, not run yet.**" in text
    assert "```yaml\n" + PREREGISTRATION + "```" in text
    _write_rows(path, _rows(SEEDS[:3]))  # one seed short: the family is not tested yet
    text = write_report(path).read_text()
    assert (
        "**Not tested yet**" in text and "`thickness: 1 conv` (3 of 4 seeds)" in text and "base (3 of 4 seeds)" in text
    )
    _write_rows(path, _rows(SEEDS))
    text = write_report(path).read_text()
    assert "Family: the 2 hypotheses below and nothing else; Welch's t-test (unpaired), two-sided, Holm's" in text
    lines = [line for line in text.splitlines() if line.startswith("| `")]
    assert lines[0].startswith("| `thickness: 1 conv`: one conv per block scores higher | higher |")
    assert lines[0].endswith("| supported |") and lines[1].endswith("| not supported (not called) |")
    assert "Supported: `thickness: 1 conv`." in text
    assert (
        "### What was not pre-registered\n\nthe other measures and sets\n\nEverything else in this report is exploratory"
        in text
    )
    # the registered Welch test's interval: the difference of means -/+ t(0.975, Welch's df) x its standard error
    welch, _ = family_results(load_study(path), StudyNumbers(load_study(path), _rows(SEEDS)))
    rows = [r for r in _rows(SEEDS) if r["eval_set"] == "cifar"]
    level = [float(r["auc_rebalanced"]) for r in rows if r["level"] == "1 conv"]
    base = [float(r["auc_rebalanced"]) for r in rows if r["level"] == "ECCV16"]
    va, vb = np.var(level, ddof=1) / len(level), np.var(base, ddof=1) / len(base)
    df = (va + vb) ** 2 / (va**2 / (len(level) - 1) + vb**2 / (len(base) - 1))
    half = scipy.stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    difference = np.mean(level) - np.mean(base)
    assert welch[0].interval == pytest.approx((difference - half, difference + half))
    # and widened for the family: the same test at alpha / m, Bonferroni's simultaneous interval (two at 0.05)
    family_half = scipy.stats.t.ppf(1 - 0.05 / 2 / 2, df) * np.sqrt(va + vb)
    assert welch[0].family_interval == pytest.approx((difference - family_half, difference + family_half))
    assert (
        f"| {difference:+.2f} | {difference - half:+.2f} to {difference + half:+.2f} | "
        f"{difference - family_half:+.2f} to {difference + family_half:+.2f} |" in text
    )
    assert "| 95% interval | 97.5% interval | p | Holm p | verdict |" in text
    for t in welch:  # it misses zero exactly when the test's p is below alpha / m
        assert t.family_interval is not None and t.p is not None
        assert (t.family_interval[0] > 0 or t.family_interval[1] < 0) == (t.p < 0.05 / 2)
    # beside it, exploratory: the arms' per-seed correlation and the test paired by seed
    paired_row = next(
        line for line in text.split("### Paired by seed (exploratory)")[1].splitlines() if "1 conv" in line
    )
    correlation = scipy.stats.pearsonr(level, base)[0]
    assert paired_row.startswith(f"| `thickness: 1 conv` | {correlation:+.2f} | {difference:+.2f} |")
    # registered as paired: each level's seed against the base's same seed (scipy's ttest_rel), Holm over the two
    paired = _confirmatory(tmp_path, PREREGISTRATION.replace("alpha: 0.05", "alpha: 0.05\n  test: paired"))
    tested, short = family_results(load_study(paired), StudyNumbers(load_study(paired), _rows(SEEDS)))
    rows = [r for r in _rows(SEEDS) if r["eval_set"] == "cifar"]
    level = [float(r["auc_rebalanced"]) for r in rows if r["level"] == "1 conv"]
    base = [float(r["auc_rebalanced"]) for r in rows if r["level"] == "ECCV16"]
    assert not short and tested[0].p == pytest.approx(ttest_rel(level, base).pvalue)
    paired_low, paired_high = ttest_rel(level, base).confidence_interval(0.95)
    assert tested[0].interval == pytest.approx((paired_low, paired_high))
    assert "the paired t-test (by seed)" in write_report(paired).read_text()
    assert "### Paired by seed" not in write_report(paired).read_text()  # registered paired: no second copy


def test_a_registered_paired_test_of_arms_equal_at_every_seed_gives_p_one_where_scipy_gives_none(tmp_path):
    """One conv per block scores exactly the base's value at every seed: scipy's paired t-test divides zero by
    zero (NaN, which no correction or verdict can use) and the family takes the study's own paired p, 1."""
    rows = _rows(SEEDS)
    for r in rows:
        if r["level"] in ("ECCV16", "transposed", "1 conv"):
            r["auc_rebalanced"] = 63.0 + r["seed"] % 4
    paired = _confirmatory(tmp_path, PREREGISTRATION.replace("alpha: 0.05", "alpha: 0.05\n  test: paired"))
    tested, short = family_results(load_study(paired), StudyNumbers(load_study(paired), rows))
    assert not short and tested[0].p == 1.0 and tested[0].p_adjusted == 1.0
    assert tested[0].verdict == "not supported (not called)"


def test_the_screening_reports_say_they_are_exploratory(tmp_path):
    from .test_report import _study

    text = write_report(_study(tmp_path)).read_text()  # no rows yet: the header alone
    assert text.splitlines()[2].startswith("**Stage: screening (exploratory).**")
    assert "## Pre-registration" not in text
