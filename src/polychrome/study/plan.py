"""``polychrome study plan``: how many seeds a confirmatory study needs, from a pilot study's spread over
seeds (``power`` has the mathematics).

The study file's ``preregistration.power`` names the pilot (a study file whose ``results.csv`` holds rows),
the set and the smallest difference worth finding. The pilot gives two spreads of the primary endpoint over
seeds: the base's own (its seeds), and the pooled within-level spread of every other level it trained (many
levels of a few seeds each: many more degrees of freedom). ``spread: arms`` plans the base's arm with the
first and a level's arm with the second; ``base`` and ``pooled`` use one of them for both; ``sd`` overrides
the pilot. The pilot also says how far pairing by seed would help: the pooled correlation, over seeds, of
each level with the base at the same seed (runs of one seed share their data order and initial draws).

The plan is a Markdown table (seeds an arm against the difference found with 80% and 90% power, unpaired
and paired, at the level the family's correction leaves each comparison), a figure of power against seeds
for a few differences, and the seeds the design needs, checked against the seeds the file registers.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from polychrome.study.power import detectable_difference, family_alpha, power, seeds_needed
from polychrome.study.spec import PowerPlan, Preregistration, Study, load_study

POWERS = (0.8, 0.9)
SEEDS_SHOWN = (3, 4, 5, 6, 8, 10, 12, 15, 20, 30)
DIFFERENCES_SHOWN = (0.5, 0.75, 1.0, 1.5)  # multiples of the design's difference, in the figure


@dataclass(frozen=True)
class Pilot:
    """A pilot study's spread of one measure over seeds on one set."""

    study: str
    eval_set: str
    measure: str
    base: tuple[float, ...]  # the base's values, one per seed
    pooled_sd: float  # the within-level spread of the other trained levels, pooled
    pooled_df: int  # its degrees of freedom (the seeds of those levels less one each)
    levels: int  # how many levels it pools
    correlation: float | None  # the pooled per-seed correlation of a level with the base (None: no seeds shared)

    @property
    def base_sd(self) -> float:
        return statistics.stdev(self.base)


def read_pilot(path: str | Path, eval_set: str, measure: str = "auc_rebalanced") -> Pilot:
    """The spreads of ``measure`` on ``eval_set`` in the rows of the study file at ``path``."""
    from polychrome.study.preregistration import seed_values
    from polychrome.study.report import read_rows
    from polychrome.study.summary import StudyNumbers

    study = load_study(path)
    numbers = StudyNumbers(study, read_rows(study))
    if eval_set not in numbers.eval_sets:
        raise ValueError(
            f"the pilot {path} has no evaluation set {eval_set!r}; its sets: {', '.join(numbers.eval_sets)}"
        )
    base = numbers.base.get((eval_set, measure), [])
    if len(base) < 2:
        raise ValueError(
            f"the pilot {path} has {len(base)} base seed(s) with {measure} on {eval_set}; a spread needs two: run it first"
        )
    base_by_seed = seed_values(numbers, eval_set, measure)
    squares, df, levels, cross, level_sq, base_sq = 0.0, 0, 0, 0.0, 0.0, 0.0
    for factor in study.factors:
        if factor.decode_only:  # a decoding of the base's checkpoints: not a training of its own
            continue
        for level in factor.levels:
            values = numbers.values.get((factor.name, level, eval_set, "", measure), [])
            if numbers.is_base(factor, level) or len(values) < 2:
                continue
            squares += statistics.variance(values) * (len(values) - 1)
            df += len(values) - 1
            levels += 1
            by_seed = seed_values(numbers, eval_set, measure, factor.name, level)
            shared = sorted(set(by_seed) & set(base_by_seed))
            if len(shared) >= 2:
                x = [by_seed[s] for s in shared]
                b = [base_by_seed[s] for s in shared]
                mx, mb = statistics.fmean(x), statistics.fmean(b)
                cross += sum((u - mx) * (v - mb) for u, v in zip(x, b, strict=True))
                level_sq += sum((u - mx) ** 2 for u in x)
                base_sq += sum((v - mb) ** 2 for v in b)
    if df == 0:
        raise ValueError(f"the pilot {path} has no trained level besides the base with two seeds on {eval_set}")
    correlation = cross / math.sqrt(level_sq * base_sq) if level_sq and base_sq else None
    return Pilot(study.name, eval_set, measure, tuple(base), math.sqrt(squares / df), df, levels, correlation)


@dataclass(frozen=True)
class Plan:
    """The seeds a confirmatory design needs, and the table and figure that say why."""

    study: Study
    pilot: Pilot | None
    sd_level: float  # the spread over seeds planned for a level's arm
    sd_base: float  # and for the base's
    alpha: float  # per comparison, after the family's correction
    seeds: int  # the fewest seeds an arm that find the design's difference with its power
    markdown: str


def plan(path: str | Path) -> Plan:
    """The plan of the confirmatory study file at ``path`` (its ``preregistration.power``)."""
    path = Path(path)
    study = load_study(path)
    registered = study.preregistration
    if registered is None or registered.power is None:
        raise ValueError(
            f"{path} has no preregistration.power: name a pilot study and the difference to find, e.g. "
            "power: {pilot: zhang-cifar10.yaml, difference: 1.0, power: 0.8}"
        )
    design = registered.power
    pilot_path = path.parent / design.pilot
    if not pilot_path.is_file():
        raise ValueError(f"{path}: power.pilot names {design.pilot!r}, which is not a study file beside it")
    measure = registered.primary_endpoint.measure
    pilot = (
        None
        if design.sd is not None
        else read_pilot(pilot_path, design.eval_set or registered.primary_endpoint.eval_set, measure)
    )
    sd_level, sd_base = _spreads(design, pilot)
    alpha = family_alpha(registered.alpha, len(registered.hypotheses), registered.correction)
    n = seeds_needed(design.difference, sd_level, sd_base, alpha, design.power, registered.test, design.correlation)
    lines = _markdown(study, registered, design, pilot, sd_level, sd_base, alpha, n)
    return Plan(study, pilot, sd_level, sd_base, alpha, n, "\n".join(lines) + "\n")


def _spreads(design: PowerPlan, pilot: Pilot | None) -> tuple[float, float]:
    """(a level's arm, the base's arm)."""
    if design.sd is not None:
        return design.sd, design.sd
    assert pilot is not None
    if design.spread == "base":
        return pilot.base_sd, pilot.base_sd
    if design.spread == "pooled":
        return pilot.pooled_sd, pilot.pooled_sd
    return pilot.pooled_sd, pilot.base_sd


def _pilot_lines(design: PowerPlan, pilot: Pilot | None, measure: str, sd_level: float, sd_base: float) -> list[str]:
    """Where the planned spreads come from: the study file's, or its pilot's seeds."""
    lines: list[str] = []
    if pilot is None:
        lines.append(f"Spread over seeds: {sd_level:.3f} for every arm, as the study file states (`power.sd`).")
    else:
        base = " / ".join(f"{v:.2f}" for v in pilot.base)
        rho = "none: no level shares seeds with the base" if pilot.correlation is None else f"{pilot.correlation:+.2f}"
        lines += [
            f"Pilot: `{pilot.study}` ({design.pilot}), `{measure}` on {pilot.eval_set}. The base's {len(pilot.base)} seeds "
            f"{base}: sd {pilot.base_sd:.3f} ({len(pilot.base) - 1} degrees of freedom). The pilot's other "
            f"{pilot.levels} trained levels, their spreads over seeds pooled: sd {pilot.pooled_sd:.3f} ({pilot.pooled_df} "
            f"degrees of freedom). A level against the base at the same seed, correlation over seeds pooled over "
            f"those levels: {rho}.",
            "",
            "Planned spreads: "
            + {
                "arms": f"the base's arm {sd_base:.3f} (its own seeds), a level's arm {sd_level:.3f} (the pooled levels)",
                "base": f"{sd_base:.3f} for both arms (the base's seeds)",
                "pooled": f"{sd_level:.3f} for both arms (the pooled levels)",
            }[design.spread]
            + f" (`power.spread: {design.spread}`).",
        ]
    return lines


def _markdown(
    study: Study,
    registered: Preregistration,
    design: PowerPlan,
    pilot: Pilot | None,
    sd_level: float,
    sd_base: float,
    alpha: float,
    n: int,
) -> list[str]:
    m = len(registered.hypotheses)
    measure = registered.primary_endpoint.measure
    lines = [f"# Plan of `{study.name}`: how many seeds", ""]
    lines += _pilot_lines(design, pilot, measure, sd_level, sd_base)
    lines += [
        "",
        f"Family: {m} comparison{'s' if m > 1 else ''} ({', '.join(f'`{h.comparison}`' for h in registered.hypotheses)}), "
        f"{registered.correction.capitalize()} at {registered.alpha:g}: each comparison is planned at {alpha:.4g} "
        f"two-sided ({registered.alpha:g} / {m}; Holm rejects whatever Bonferroni does, so this is its least power). "
        "Power (`polychrome.study.power`): Welch's test exactly, integrating over the sample variances the seeds give "
        "(its degrees of freedom estimated from them, as the test does; the noncentral t with the degrees of freedom at "
        "the true spreads would overstate it at a few seeds); the paired test from the noncentral t, with an assumed "
        f"per-seed correlation of {design.correlation:g} between a level and the base (`power.correlation`).",
        "",
        "Smallest true difference found, by seeds an arm:",
        "",
        "| seeds an arm | Welch: 80% power | Welch: 90% power | paired: 80% power | paired: 90% power |",
        "|---:|---:|---:|---:|---:|",
    ]
    for seeds in sorted({*SEEDS_SHOWN, n}):
        cells = [
            f"{detectable_difference(seeds, sd_level, sd_base, alpha, target, test, design.correlation):.2f}"
            for test in ("welch", "paired")
            for target in POWERS
        ]
        mark = f"**{seeds}**" if seeds == n else str(seeds)
        lines.append(f"| {mark} | " + " | ".join(cells) + " |")
    got = power(n, design.difference, sd_level, sd_base, alpha, registered.test, design.correlation)
    registered_seeds = len(registered.seeds)
    verdict = (
        f"it registers {registered_seeds} seeds an arm ({_seeds(registered.seeds)}), which meets it"
        if registered_seeds >= n
        else f"**it registers only {registered_seeds} seeds an arm**: add {n - registered_seeds} before its first run"
    )
    lines += [
        "",
        f"**Design: {n} seeds an arm.** The fewest with which the registered test ({registered.test}) finds a true "
        f"difference of {design.difference:g} with power at least {design.power:g} at {alpha:.4g} (power at {n} seeds: "
        f"{got:.3f}); {verdict}. With every arm at {n} seeds the family has {m + 1} arms, {(m + 1) * n} trainings.",
        "",
        "![power against seeds](plan.webp)",
        "",
        f"*Power of each comparison against seeds an arm, for true differences of {', '.join(f'{f * design.difference:g}' for f in DIFFERENCES_SHOWN)} "
        "(solid: Welch; dashed: paired); the design's seeds marked.*",
    ]
    return lines


def _seeds(seeds: list[int]) -> str:
    ordered = sorted(seeds)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]} to {ordered[-1]}"
    return ", ".join(map(str, ordered))


def write_plan(path: str | Path) -> tuple[Plan, Path]:
    """Write ``plan.md`` and ``plan.webp`` beside the study's results (``docs/study/<name>/``)."""
    from polychrome.study import figures

    found = plan(path)
    registered, folder = found.study.preregistration, found.study.results_dir
    assert registered is not None and registered.power is not None
    folder.mkdir(parents=True, exist_ok=True)
    design = registered.power
    seeds = list(range(2, max(30, 2 * found.seeds) + 1))
    curves = {
        (f * design.difference, test): [
            power(n, f * design.difference, found.sd_level, found.sd_base, found.alpha, test, design.correlation)
            for n in seeds
        ]
        for f in DIFFERENCES_SHOWN
        for test in ("welch", "paired")
    }
    figures.plot_power(seeds, curves, found.seeds, design.power, folder / "plan.webp")
    (folder / "plan.md").write_text(found.markdown)
    return found, folder / "plan.md"
