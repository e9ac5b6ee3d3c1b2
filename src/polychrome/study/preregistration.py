"""A confirmatory study's pre-registration: proof that it was committed before its first run, and its one
pre-registered test.

Two stages. A **screening** (a study file without ``preregistration:``) varies many factors at a few seeds
and corrects over every comparison it makes: exploratory, its uncorrected leads are where to look next. A
**confirmatory** study registers, before its first run, a few hypotheses drawn from a screening's leads, one
primary endpoint (a measure on a held-out set), the family-wise error rate, the seeds (from ``study plan``),
the test and the correction over those hypotheses only, and a stopping rule; everything else it measures is
exploratory.

``register`` is what ``polychrome study run`` calls before running a confirmatory study: the file must be
tracked by git and unchanged against the commit that holds it, and its first run records that commit and the
file's hash in ``registration.json`` beside the rows; a later run refuses a file whose text has changed since
(a changed pre-registration is another study). ``confirmatory_lines`` is the report's section: the block as
registered, the test of the family once every registered seed is in, and what was not registered.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from polychrome.study.power import family_alpha
from polychrome.study.significance import format_p, holm, paired_p, welch_p
from polychrome.study.spec import Hypothesis, Preregistration, Study


class RegistrationError(ValueError):
    """A confirmatory study that may not run: its file is not committed, or changed since its first run."""


def registration_path(study: Study) -> Path:
    return study.results_dir / "registration.json"


def _git(folder: Path, *words: str) -> str:
    return subprocess.run(["git", *words], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


def committed(path: Path) -> str:
    """The commit that holds the study file at ``path`` as it is now; raises when it is untracked or has
    uncommitted changes, or when it is not in a git checkout."""
    folder, name = path.resolve().parent, path.resolve().name
    try:
        _git(folder, "ls-files", "--error-unmatch", name)
    except (OSError, subprocess.CalledProcessError):
        raise RegistrationError(
            f"{path} is a pre-registration but is not committed in a git repository: commit it before its first run "
            f"(git add {path} && git commit), then run the study"
        ) from None
    if _git(folder, "status", "--porcelain", "--", name):
        raise RegistrationError(
            f"{path} has uncommitted changes: a pre-registration is the committed file; commit the changes before the "
            "study's first run, or restore the committed file (git diff shows them)"
        )
    return _git(folder, "log", "-n", "1", "--format=%H", "--", name)


def register(study: Study, path: str | Path) -> dict:
    """Check that a confirmatory study may run and return its registration record: at its first run, the commit
    holding the file and the file's hash (written to ``registration.json``); later, the recorded one, once the
    file is found unchanged. Raises ``RegistrationError`` otherwise."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    record_path = registration_path(study)
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record["sha256"] != digest:
            raise RegistrationError(
                f"{path} has changed since the study's first run (registered in commit {record['commit'][:12]}): a "
                "pre-registration is fixed once a run starts. Restore the registered file "
                f"(git show {record['commit'][:12]}:{record['file']}), or register the change as a new study under another name"
            )
        return record
    commit = committed(path)
    record = {
        "file": _relative(path),
        "commit": commit,
        "sha256": digest,
        "first_run": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(_git(path.resolve().parent, "rev-parse", "--show-toplevel"))))
    except (OSError, subprocess.CalledProcessError, ValueError):
        return str(path)


def seed_values(numbers, eval_set: str, measure: str, factor: str | None = None, level: str | None = None) -> dict:
    """seed -> ``measure`` on ``eval_set`` of one (factor, level)'s final rows, or with no ``factor`` of the
    base's (its first copy: the base level of any factor that trains), from a ``StudyNumbers``."""
    factors = {f.name: f for f in numbers.study.factors}
    found: dict[int, float] = {}
    for row in numbers.rows:
        if row["eval_set"] != eval_set or row.get("checkpoint_images") or row.get(measure) in ("", None):
            continue
        spec = factors.get(row["factor"])
        if spec is None or spec.decode_only:  # baselines, the budget curve, decodings of the base's checkpoints
            continue
        if (row["factor"], row["level"]) == (factor, level) if factor else numbers.is_base(spec, row["level"]):
            found.setdefault(int(row["seed"]), float(row[measure]))
    return found


@dataclass(frozen=True)
class Tested:
    """One pre-registered hypothesis on the primary endpoint: the level's and the base's values at the
    registered seeds, and once every arm has them all, the test's p, the family's corrected p, the difference's
    95% interval by the same test (per comparison, not widened for the family), its interval at the family's
    level (1 - alpha / m, Bonferroni's simultaneous interval: it holds zero exactly when Holm's first step would
    not call the comparison, so beside a 95% interval that misses zero it shows why a p a little above alpha is
    not called) and the verdict."""

    hypothesis: Hypothesis
    level: tuple[float, ...]
    base: tuple[float, ...]
    p: float | None = None
    p_adjusted: float | None = None
    interval: tuple[float, float] | None = None
    family_interval: tuple[float, float] | None = None
    verdict: str = ""

    @property
    def difference(self) -> float:
        return statistics.fmean(self.level) - statistics.fmean(self.base)


def family_results(study: Study, numbers) -> tuple[list[Tested], list[str]]:
    """The pre-registered test of each hypothesis and the arms still short of their registered seeds: the
    family is tested only when none is (the stopping rule fixes the seeds), and is untested (no p) until then."""
    from scipy.stats import ttest_ind, ttest_rel

    registered = study.preregistration
    assert registered is not None
    endpoint, seeds = registered.primary_endpoint, sorted(registered.seeds)
    base = seed_values(numbers, endpoint.eval_set, endpoint.measure)
    short = [f"base ({len(set(seeds) & set(base))} of {len(seeds)} seeds)"] if not set(seeds) <= set(base) else []
    found = []
    for h in registered.hypotheses:
        level = seed_values(numbers, endpoint.eval_set, endpoint.measure, h.factor, h.level)
        if not set(seeds) <= set(level):
            short.append(f"`{h.comparison}` ({len(set(seeds) & set(level))} of {len(seeds)} seeds)")
        found.append(
            Tested(h, tuple(level[s] for s in seeds if s in level), tuple(base[s] for s in seeds if s in base))
        )
    if short:
        return found, short
    raw: list[float] = []
    intervals: list[tuple[tuple[float, float], tuple[float, float]]] = []
    family_level = 1 - family_alpha(registered.alpha, len(registered.hypotheses), registered.correction)
    for t in found:
        if registered.test == "paired":  # the values are in seed order on both sides: paired by seed
            result = ttest_rel(t.level, t.base)
            p = paired_p(list(t.level), list(t.base))  # scipy's p, or the study's where the differences are constant
        else:
            result = ttest_ind(t.level, t.base, equal_var=False)
            p = welch_p(list(t.level), list(t.base))  # scipy's p, or the study's where both arms are constant
        assert p is not None  # every arm has the registered seeds, at least two
        raw.append(p)
        intervals.append((_bounds(result, 0.95), _bounds(result, family_level)))
    adjusted = holm(raw) if registered.correction == "holm" else [min(1.0, p * len(raw)) for p in raw]
    tested = []
    for t, p, p_adjusted, (interval, family_interval) in zip(found, raw, adjusted, intervals, strict=True):
        expected = (t.hypothesis.expect == "higher") == (t.difference > 0)
        verdict = (
            "supported"
            if p_adjusted <= registered.alpha and expected
            else "called, against the expected direction"
            if p_adjusted <= registered.alpha
            else "not supported (not called)"
        )
        tested.append(
            replace(t, p=p, p_adjusted=p_adjusted, interval=interval, family_interval=family_interval, verdict=verdict)
        )
    return tested, []


def _bounds(result, level: float) -> tuple[float, float]:
    """A scipy t-test result's confidence interval for the difference at ``level``, as two floats."""
    low, high = result.confidence_interval(level)
    return float(low), float(high)


def confirmatory_lines(study: Study, numbers) -> list[str]:
    """The report's section on a confirmatory study: what was registered (verbatim) and when, the test of the
    family, and what was not registered."""
    registered = study.preregistration
    assert registered is not None
    endpoint = registered.primary_endpoint
    lines = [
        "## Pre-registration",
        "",
        *_registration_sentence(study, registered),
        "",
        "```yaml",
        registered.verbatim.rstrip(),
        "```",
        "",
    ]
    m = len(registered.hypotheses)
    test = "Welch's t-test (unpaired)" if registered.test == "welch" else "the paired t-test (by seed)"
    lines += [
        "### The confirmatory test",
        "",
        f"Primary endpoint: `{endpoint.measure}` on {endpoint.eval_set}. Family: the {m} hypotheses below and nothing "
        f"else; {test}, two-sided, {registered.correction.capitalize()}'s correction over the {m} at a family-wise "
        f"error of {registered.alpha:g}; seeds {registered.seeds}, fixed in advance (stopping rule: "
        f"{registered.stopping_rule.rstrip('.')}).",
        "",
    ]
    results, short = family_results(study, numbers)
    if short:
        lines += [
            f"**Not tested yet**: the family is tested once, when every arm has its registered seeds; still short: "
            f"{', '.join(short)}. No p-value of the family is computed before then.",
            "",
        ]
    else:
        lines += _family_table(registered, results) + _paired_by_seed(registered, results)
    lines += [
        "### What was not pre-registered",
        "",
        registered.exploratory,
        "",
        f"Everything else in this report is exploratory, as in a screening: every other measure and set, the "
        f"per-factor tables and verdicts, whose Holm correction runs over all {numbers.tested} comparisons the report "
        "makes (family-wise error 0.05), the curves, the cost and the examples.",
        "",
    ]
    return lines


def _family_table(registered: Preregistration, results: list) -> list[str]:
    """The family's comparisons, each with its test's p, the corrected p, its intervals and the verdict, and what
    was supported."""
    per_comparison = family_alpha(registered.alpha, len(registered.hypotheses), registered.correction)
    family_level = f"{100 * (1 - per_comparison):.4g}%"
    lines = [
        f"| hypothesis | expected | level | base | difference | 95% interval | {family_level} interval | p | "
        f"{registered.correction.capitalize()} p | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        h = r.hypothesis
        lines.append(
            f"| `{h.comparison}`{': ' + h.statement if h.statement else ''} | {h.expect} | "
            f"{_mean_sd(r.level)} | {_mean_sd(r.base)} | {r.difference:+.2f} | {format_interval(r.interval)} | "
            f"{format_interval(r.family_interval)} | {format_p(r.p)} | {format_p(r.p_adjusted)} | {r.verdict} |"
        )
    supported = [f"`{r.hypothesis.comparison}`" for r in results if r.verdict == "supported"]
    return [
        *lines,
        "",
        (f"Supported: {', '.join(supported)}." if supported else "No hypothesis is supported.")
        + " The 95% interval is the difference's confidence interval by the registered test, one comparison at a "
        f"time, not widened for the family. The {family_level} interval is widened for it: the same test at "
        f"alpha / m ({registered.alpha:g} / {len(registered.hypotheses)}, Bonferroni's simultaneous interval), so it holds zero "
        "exactly when the comparison's p is above alpha / m, as the first step of Holm's correction would not "
        "call it (Holm's later steps may call past it); the corrected p decides what is called. A hypothesis not "
        "supported is not shown false: the design finds the registered difference with the registered power, and a "
        "smaller true difference may go unfound.",
        "",
    ]


def format_interval(interval: tuple[float, float] | None) -> str:
    """A difference's interval as the report and the findings write it ("nan to nan" before the family is tested)."""
    low, high = interval or (float("nan"), float("nan"))
    return f"{low:+.2f} to {high:+.2f}"


def _paired_by_seed(registered: Preregistration, results: list[Tested]) -> list[str]:
    """Exploratory: whether a level and the base at one seed went together (their per-seed correlation on the
    primary endpoint) and the test paired by seed, beside the registered one; a registered paired test has it."""
    from scipy.stats import pearsonr

    if registered.test == "paired":
        return []
    lines = [
        "### Paired by seed (exploratory)",
        "",
        "Not registered: whether an arm and the base trained at one seed (sharing their data order, and their "
        "initial weights where their layers match) went together after training, measured by their correlation "
        "over the registered seeds on the primary endpoint, and the test paired by seed that would use it. The "
        "verdicts above do not change with it.",
        "",
        "| hypothesis | per-seed correlation | difference | paired p | registered p (Welch) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        correlation = float(pearsonr(r.level, r.base)[0])
        paired = paired_p(list(r.level), list(r.base))
        lines.append(
            f"| `{r.hypothesis.comparison}` | {correlation:+.2f} | {r.difference:+.2f} | {format_p(paired)} | "
            f"{format_p(r.p)} |"
        )
    return [*lines, ""]


def _registration_sentence(study: Study, registered: Preregistration) -> list[str]:
    path = registration_path(study)
    plan = (
        " The seeds come from `polychrome study plan` ([plan](plan.md))."
        if (study.results_dir / "plan.md").exists()
        else ""
    )
    if not path.exists():
        return [
            "**Confirmatory, not run yet.** This study's hypotheses, primary endpoint, family, seeds and test are "
            f"registered in its study file below; its first run records the commit that holds it.{plan}"
        ]
    record = json.loads(path.read_text())
    return [
        f"**Confirmatory.** Registered in `{record['file']}`, commit `{record['commit'][:12]}`, before its first run "
        f"({record['first_run'][:10]}; `registration.json` holds the file's SHA-256, and `polychrome study run` refuses "
        f"a file that differs from it).{plan} As registered:"
    ]


def _mean_sd(values: tuple[float, ...]) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"
