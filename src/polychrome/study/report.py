"""A study's written report, regenerated from its results.csv alone (plus the study file, for the order of
factors and levels and the papers' claims, and the example strips the runner wrote beside the CSV):
a README with the baselines, findings, one table and figure per factor, accuracy curves and
colourfulness for the headline factors, an example grid, the budget curve and every run. Deterministic:
the same rows give the same bytes.

A level "differs" from the base only when the means are further apart than the two seed spreads together
(|mean - mean_base| > sd + sd_base); with one seed per level no difference is called.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from polychrome.study.examples import read_strip
from polychrome.study.rows import CURVE_STEP
from polychrome.study.spec import Factor, Run, Study, expand, load_study
from polychrome.viz import image_grid, plot_accuracy_curves, plot_levels

METRICS = ("auc_rebalanced", "auc_raw", "total_ab_error", "psnr", "ssim", "colorfulness", "segment_accuracy", "classifier_accuracy")
EVERY_RUN = ("factor", "level", "seed", "eval_set", "checkpoint_images", "params", "macs", "wall_s", "eval_s", "auc_raw",
             "auc_rebalanced", "psnr", "ssim", "colorfulness", "segment_accuracy", "classifier_accuracy")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (NaN with one seed: no spread to call a difference by)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else float("nan")


def _number(text: str | None) -> float | None:
    return float(text) if text not in ("", None) else None


def summarise(rows: list[dict]) -> dict:
    """(factor, level, eval_set, checkpoint_images) -> {metric: (mean, sd, n)} over seeds (and over nothing else)."""
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        key = (row["factor"], row["level"], row["eval_set"], row.get("checkpoint_images", ""))
        for metric in (*METRICS, "colorfulness_truth"):
            value = _number(row.get(metric))
            if value is not None:
                groups[key][metric].append(value)
    return {key: {m: (*_mean_sd(v), len(v)) for m, v in metrics.items()} for key, metrics in groups.items()}


def _format(value: float, metric: str = "") -> str:
    return f"{value:.3e}" if metric == "total_ab_error" else f"{value:.3f}" if metric in ("ssim", "segment_accuracy") else f"{value:.2f}"


def _cell(stat, metric: str = "") -> str:
    if stat is None:
        return ""
    mean, sd, n = stat
    return _format(mean, metric) if n == 1 else f"{_format(mean, metric)} ± {_format(sd, metric)}"


def _separated(stat, other) -> bool | None:
    """True/False whether two (mean, sd, n) are further apart than their seed spreads; None with one seed."""
    if stat[2] < 2 or other[2] < 2:
        return None
    return abs(stat[0] - other[0]) > stat[1] + other[1]


def _differs(stat, base) -> str:
    if stat is None or base is None:
        return ""
    separated = _separated(stat, base)
    return "1 seed" if separated is None else "yes" if separated else "no"


def _curve(rows: list[dict], kind: str) -> list[float] | None:
    curves = [np.array(r[f"curve_{kind}"].split(), dtype=float) for r in rows if r.get(f"curve_{kind}")]
    return np.mean(curves, axis=0).tolist() if curves else None


class _Report:
    def __init__(self, study: Study, rows: list[dict]):
        self.study, self.rows, self.folder = study, rows, study.results_dir
        self.summary = summarise(rows)
        self.eval_sets = [e.name for e in study.evaluate]
        self.baselines = {(level, e): stats for (factor, level, e, _), stats in self.summary.items() if factor == "baseline"}
        self.references = {m: {e: {b: self.baselines[(b, e)][m][0] for b in study.baselines if m in self.baselines.get((b, e), {})}
                               for e in self.eval_sets} for m in ("auc_rebalanced", "auc_raw")}
        self.notes = {e.name: e.note.strip() for e in study.evaluate if e.note}
        self.lines: list[str] = []

    def stat(self, factor: str, level: str, eval_set: str, metric: str, point: str = ""):
        return self.summary.get((factor, level, eval_set, point), {}).get(metric)

    def write(self) -> Path:
        self.header()
        self.baseline_table()
        if self.study.findings:
            self.findings()
        for factor in self.study.factors:
            self.factor_section(factor)
        self.examples()
        self.budget()
        self.every_run()
        (self.folder / "README.md").write_text("\n".join(self.lines) + "\n")
        return self.folder / "README.md"

    def header(self) -> None:
        study = self.study
        trained = {r["run"]: float(r["wall_s"] or 0) for r in self.rows if r["factor"] != "baseline"}
        evaluated = sum(float(r.get("eval_s") or 0) for r in self.rows)
        planned = expand(study)
        have = {(r["factor"], r["level"], r["seed"]) for r in self.rows}
        missing = [run.key for run in planned if (run.factor, run.level, str(run.seed)) not in have]
        self.lines += [
            f"# Study `{study.name}`", "",
            f"Generated by `polychrome study report` from `results.csv` ({len(self.rows)} rows). Base config `{study.base.name}`"
            f"{' with ' + ', '.join(f'`{s}`' for s in study.sets) if study.sets else ''}; budget: every run sees "
            f"{study.train_images:,} training images. Wall time: training {sum(trained.values()) / 3600:.2f} h "
            f"({len(trained)} trainings), evaluation {evaluated / 3600:.2f} h (rows that record it), on "
            f"{', '.join(sorted({r['device'] for r in self.rows}))} (wall times depend on what else shared the machine; "
            "`macs`, multiply-accumulates per image, is the cost to compare). Each cell is the mean ± standard deviation over seeds; "
            "\"differs\" says whether a level is further from the base than the two seed spreads together.", "",
        ]
        if missing:
            self.lines += [f"**Incomplete: {len(planned) - len(missing)} of {len(planned)} planned runs have rows**; still to run: "
                           + ", ".join(f"`{key}`" for key in missing) + ".", ""]

    def baseline_table(self) -> None:
        self.lines += ["## Baselines", "", "Lines in the figures: gray dashed, random dotted, mean dash-dotted.", "",
                       "| baseline | " + " | ".join(f"{e} raw / rebalanced AuC" for e in self.eval_sets) + " |",
                       "|---|" + "---:|" * len(self.eval_sets)]
        for name in self.study.baselines:
            cells = [f"{_cell(self.stat('baseline', name, e, 'auc_raw'))} / {_cell(self.stat('baseline', name, e, 'auc_rebalanced'))}"
                     for e in self.eval_sets]
            self.lines.append(f"| {name} | " + " | ".join(cells) + " |")
        self.lines.append("")
        self.lines += [f"*{name}: {note}*" for name, note in self.notes.items()] + [""]
        for e in self.eval_sets:  # raw AuC rewards staying near the prior: say when a baseline beats every trained run on it
            trained = [float(r["auc_raw"]) for r in self.rows if r["factor"] != "baseline" and r["eval_set"] == e and r.get("auc_raw")]
            for name in self.study.baselines:
                stat = self.stat("baseline", name, e, "auc_raw")
                if trained and stat and stat[0] > max(trained):
                    self.lines += [f"On {e}, `{name}` has a higher raw AuC ({stat[0]:.2f}) than every trained run (best "
                                   f"{max(trained):.2f}): raw AuC rewards predicting common, unsaturated colours everywhere, which the rebalanced AuC corrects for.", ""]

    def findings(self) -> None:
        """One paragraph per factor: our numbers (computed), the papers' claim and what they expect (from the
        study file), whether ours agrees (computed) and, where not, the likely reason the study file gives."""
        self.lines += ["## Findings", ""]
        for factor in self.study.factors:
            claim = self.study.findings.get(factor.name)
            if claim is None:
                continue
            base_level = _base_level(factor)
            parts = [f"**{factor.name}.**"]
            for eval_set in self.eval_sets:
                stats = {level: self.stat(factor.name, level, eval_set, "auc_rebalanced") for level in factor.levels}
                stats = {level: s for level, s in stats.items() if s is not None}
                if not stats:
                    continue
                best = max(stats, key=lambda level: stats[level][0])
                worst = min(stats, key=lambda level: stats[level][0])
                raw = {level: self.stat(factor.name, level, eval_set, "auc_raw") for level in stats}
                called = [level for level in stats if level != base_level and base_level in stats and _separated(stats[level], stats[base_level])]
                parts.append(
                    f"On {eval_set}, rebalanced AuC runs from {_cell(stats[worst])} (`{worst}`) to {_cell(stats[best])} (`{best}`)"
                    + (f"; raw AuC from {min(s[0] for s in raw.values() if s):.2f} to {max(s[0] for s in raw.values() if s):.2f}" if any(raw.values()) else "")
                    + (_best_against_runner_up(stats) if base_level is None
                       else "; the base level has no rows yet" if base_level not in stats
                       else "; beyond the seed spread from the base: " + ", ".join(f"`{level}`" for level in called) if called
                       else "; no level differs from the base beyond the seed spread" if all(s[2] > 1 for s in stats.values())
                       else "; a level with one seed so far calls no difference") + ".")
            parts.append(f"Papers: {claim.get('papers', '').strip()}")
            expected = claim.get("expect")
            first = {level: self.stat(factor.name, level, self.eval_sets[0], "auc_rebalanced") for level in factor.levels}
            first = {level: s for level, s in first.items() if s is not None}
            if expected in first:
                parts.append(_agreement(first, expected, self.eval_sets[0], claim.get("otherwise", "not known").strip()))
            self.lines += [" ".join(parts), ""]

    def factor_section(self, factor: Factor) -> None:
        levels = list(factor.levels)
        base_level = _base_level(factor)
        self.lines += ["", f"## {factor.name}", "", "Levels: " + "; ".join(f"`{level}` = {', '.join(f'`{s}`' for s in sets) or 'base'}"
                                                                           for level, sets in factor.levels.items()) + f". Seeds: {factor.seeds}.", ""]
        for eval_set in self.eval_sets:
            note = self.notes.get(eval_set)
            self.lines += [f"**{eval_set}**" + (f" ({note})" if note else ""), "", "| level | " + " | ".join(METRICS) + " | differs (rebalanced AuC) |",
                           "|---|" + "---:|" * (len(METRICS) + 1)]
            for level in levels:
                base = self.stat(factor.name, base_level, eval_set, "auc_rebalanced") if base_level else None
                differs = "base" if level == base_level else _differs(self.stat(factor.name, level, eval_set, "auc_rebalanced"), base)
                self.lines.append(f"| {level} | " + " | ".join(_cell(self.stat(factor.name, level, eval_set, m), m) for m in METRICS)
                                  + f" | {differs} |")
            self.lines.append("")
        panels = {m: {e: [self.stat(factor.name, level, e, m) for level in levels] for e in self.eval_sets} for m in ("auc_rebalanced", "auc_raw")}
        plot_levels(factor.name, levels, panels, self.references, self.folder / f"{factor.name}.png")
        self.lines.append(f"![{factor.name}]({factor.name}.png)")
        if factor.name in self.study.headline:
            self.curves_and_colourfulness(factor)

    def curves_and_colourfulness(self, factor: Factor) -> None:
        self.lines += ["", f"Accuracy within each threshold (mean over seeds) and colourfulness against the truth's, per `{factor.name}` level:", ""]
        for eval_set in self.eval_sets:
            curves = {}
            for name, factor_name in [*((b, "baseline") for b in self.study.baselines), *((level, factor.name) for level in factor.levels)]:
                rows = [r for r in self.rows if (r["factor"], r["level"], r["eval_set"], r["checkpoint_images"]) == (factor_name, name, eval_set, "")]
                raw, rebalanced = _curve(rows, "raw"), _curve(rows, "rebalanced")
                if raw and rebalanced:
                    curves[name] = {"raw": raw, "rebalanced": rebalanced}
            if curves:
                figure = f"{factor.name}-curves-{eval_set}.png"
                plot_accuracy_curves(curves, self.folder / figure, step=CURVE_STEP, title=f"{factor.name}, {eval_set}")
                self.lines += [f"![{factor.name} curves on {eval_set}]({figure})", ""]
            truth = next((s for level in factor.levels if (s := self.stat(factor.name, level, eval_set, "colorfulness_truth"))), None)
            self.lines += [f"**{eval_set}** colourfulness (Hasler and Süsstrunk), truth: {_cell(truth)}", "",
                           "| level | colourfulness | rebalanced AuC |", "|---|---:|---:|"]
            for level in factor.levels:
                self.lines.append(f"| {level} | {_cell(self.stat(factor.name, level, eval_set, 'colorfulness'))} | "
                                  f"{_cell(self.stat(factor.name, level, eval_set, 'auc_rebalanced'))} |")
            self.lines.append("")

    def examples(self) -> None:
        """The same photos as gray input, as each headline level colourises them (first seed), and the truth."""
        written = False
        for eval_set in self.study.evaluate:
            paths = [(title, self.study.example_path(key, eval_set)) for title, key in [*example_columns(self.study), ("truth", "truth")]]
            strips = [(title, read_strip(path)) for title, path in paths if path.exists()]
            if len(strips) < 2:
                continue
            if not written:
                self.lines += ["", "## Examples", ""]
                written = True
            figure = f"examples-{eval_set.name}.png"
            count = min(len(cells) for _, cells in strips)
            image_grid([cells[:count] for _, cells in strips], self.folder / figure, [str(i + 1) for i in range(count)],
                       [title for title, _ in strips], cell=1.2)
            self.lines += [f"{eval_set.name}: the same {count} photos (evenly spaced through the set, centre squares), one row per"
                           " model.", "", f"![examples on {eval_set.name}]({figure})", ""]

    def budget(self) -> None:
        budget = sorted({int(k[3]) for k in self.summary if k[0] == "budget"})
        if not budget:
            return
        level = next(k[1] for k in self.summary if k[0] == "budget")
        self.lines += ["", "## Budget curve", "", "The base trained longer, evaluated along the way: do rankings made at the study's budget hold?", "",
                       "| training images | " + " | ".join(f"{e} raw / rebalanced AuC" for e in self.eval_sets) + " |",
                       "|---:|" + "---:|" * len(self.eval_sets)]
        for images in budget:
            cells = [f"{_cell(self.stat('budget', level, e, 'auc_raw', str(images)))} / {_cell(self.stat('budget', level, e, 'auc_rebalanced', str(images)))}"
                     for e in self.eval_sets]
            self.lines.append(f"| {images:,} | " + " | ".join(cells) + " |")
        panels = {m: {e: [self.stat("budget", level, e, m, str(images)) for images in budget] for e in self.eval_sets}
                  for m in ("auc_rebalanced", "auc_raw")}
        plot_levels("budget", [f"{images:,}" for images in budget], panels, self.references, self.folder / "budget.png", xlabel="training images")
        self.lines += ["", "![budget curve](budget.png)"]

    def every_run(self) -> None:
        self.lines += ["", "## Every run", "", "| run | " + " | ".join(EVERY_RUN) + " |", "|---|" + "---|" * len(EVERY_RUN)]
        for row in self.rows:
            cells = [row.get(c, "") if c not in METRICS else (_format(float(row[c]), c) if row.get(c) else "") for c in EVERY_RUN]
            self.lines.append(f"| {row['run']} | " + " | ".join(cells) + " |")


def example_columns(study: Study) -> list[tuple[str, str]]:
    """(title, run key) of the example grid: gray, then each headline level; the base, one model, appears once."""
    columns = [("gray input", "baseline--gray--s0")]
    base_shown = False
    for factor in (f for f in study.factors if f.name in study.headline):
        for level, sets in factor.levels.items():
            if not sets and base_shown:
                continue
            base_shown |= not sets
            columns.append((level, Run(factor.name, level, factor.seeds[0], []).key))
    return columns


def _agreement(stats: dict, expected: str, eval_set: str, otherwise: str) -> str:
    """Whether the level the papers lead one to expect is ours best on ``eval_set``, and how sure that is."""
    ranked = sorted(stats, key=lambda level: -stats[level][0])
    best = ranked[0]
    if best == expected:
        if len(ranked) == 1:
            return f"Only `{expected}` has rows on {eval_set} so far."
        separated = _separated(stats[best], stats[ranked[1]])
        sureness = ("beyond the seed spread of the runner-up" if separated else
                    f"but within the seed spread of `{ranked[1]}`" if separated is False else "on one seed, so not a called difference")
        return f"Ours agrees on {eval_set}: `{expected}` has the highest mean, {sureness}."
    separated = _separated(stats[expected], stats[best])
    if separated is False:
        return f"Ours agrees on {eval_set} within the seed spread: `{best}` has the highest mean, `{expected}` is within its spread."
    return (f"Ours does not agree on {eval_set}: `{best}` beats `{expected}` ({stats[best][0]:.2f} against {stats[expected][0]:.2f}"
            + (", one seed, so not a called difference" if separated is None else ", beyond the seed spreads") + f"). Likely reason: {otherwise}")


def _best_against_runner_up(stats: dict) -> str:
    """For a factor with no base level (every level sets something): is its best level separated from the next?"""
    if len(stats) < 2:
        return ""
    best, runner_up = sorted(stats, key=lambda level: -stats[level][0])[:2]
    separated = _separated(stats[best], stats[runner_up])
    return (f"; `{best}` is " + ("beyond" if separated else "within") + f" the seed spread of the runner-up `{runner_up}`"
            if separated is not None else "; with one seed per level no difference is called")


def _base_level(factor: Factor) -> str | None:
    return next((level for level, sets in factor.levels.items() if not sets), None)


def write_report(study_path: str | Path) -> Path:
    """Write ``README.md`` and its figures beside the study's results.csv."""
    study = load_study(study_path)
    path = study.results_dir / "results.csv"
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows yet: run `polychrome study run {study_path}` first")
    return _Report(study, rows).write()
