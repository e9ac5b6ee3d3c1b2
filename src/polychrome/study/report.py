"""A study's written report, regenerated from its results.csv alone (plus the study file, for the order of
factors and levels and the papers' claims, and the example strips the runner wrote beside the CSV):
a README with the method, the baselines, the differences that survive the statistics, findings, one
section per factor (tables, verdicts on every measure, a figure), accuracy curves and colourfulness for
the headline factors, cost against compute, the budget curve, an example grid and every run.

Every sentence about a result is generated from the numbers. Each level is compared with the base's
all-seed mean by Welch's t-test, Holm-corrected over every comparison of the study (``summary``,
``significance``); a difference is called only when it survives the correction, and a level with one seed
is not tested. Deterministic: the same rows give the same bytes (figures carry no timestamp).
"""

from __future__ import annotations

import csv
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from polychrome.metrics.intervals import REPLICATES, TARGET_BLOCKS
from polychrome.study import figures
from polychrome.study.examples import read_strip, write_webp
from polychrome.study.rows import CURVE_STEP
from polychrome.study.significance import ALPHA, TESTS, Comparison, change_p, correct, format_p
from polychrome.study.spec import EvalSet, Factor, Run, Study, base_config, expand, load_study
from polychrome.study.summary import VERDICT_MEASURES, Stat, StudyNumbers, mean_sd, sweep
from polychrome.study.summary import trend as trend_of
from polychrome.viz import image_grid

TABLE = (
    ("auc_rebalanced", "rebalanced AuC"),
    ("auc_raw", "raw AuC"),
    ("psnr", "PSNR"),
    ("ssim", "SSIM"),
    ("colorfulness", "colourfulness"),
    ("colorfulness_gap", "colourfulness distance"),
    ("false_color", "false colour"),
    ("segment_accuracy", "segment acc."),
    ("classifier_accuracy", "classifier acc."),
)
EVERY_RUN = (
    "factor",
    "level",
    "seed",
    "eval_set",
    "checkpoint_images",
    "params",
    "macs",
    "compute",
    "wall_s",
    "eval_s",
    "auc_raw",
    "auc_rebalanced",
    "psnr",
    "ssim",
    "colorfulness",
    "false_color",
    "segment_accuracy",
    "classifier_accuracy",
)
LABELS = {m.column: m.label for m in VERDICT_MEASURES}
# The first line of every report: which of the two stages (docs/studies.md, "Two stages") the study is.
_STAGES = {
    "screening": "**Stage: screening (exploratory).** Many levels, a few seeds each, one correction over every "
    "comparison: a difference it calls is a finding, and a lead it does not call is a lead for a confirmatory "
    "study (pre-registered, with the seeds its power needs), not a result.",
    "confirmatory": "**Stage: confirmatory (pre-registered).** Its pre-registered test is the section below; every "
    "other number in this report is exploratory.",
}


def _format(value: float, column: str = "") -> str:
    if column in ("total_ab_error", "compute", "macs"):
        return f"{value:.3e}"
    if column == "false_color":  # a fraction of pixels, often tiny: percent to three significant digits
        return f"{100 * value:.3g}%"
    return f"{value:.3f}" if column in ("ssim", "segment_accuracy", "classifier_accuracy") else f"{value:.2f}"


def _cell(stat: Stat | None, column: str = "") -> str:
    if stat is None:
        return ""
    mean, sd, n = stat
    return _format(mean, column) if n == 1 else f"{_format(mean, column)} ± {_format(sd, column)}"


def _difference(comparison: Comparison, column: str) -> str:
    return f"{'+' if comparison.difference >= 0 else '-'}{_format(abs(comparison.difference), column)}"


def _against(comparison: Comparison | None, column: str) -> str:
    """A comparison as a table cell: the difference from the base's mean, and its raw and Holm p (bold: called)."""
    if comparison is None:
        return ""
    if not comparison.tested:
        return f"{_difference(comparison, column)} (one seed: not tested)"
    text = f"{_difference(comparison, column)} ({format_p(comparison.p)} / {format_p(comparison.p_holm)})"
    return f"**{text}**" if comparison.called else text


def _said(comparison: Comparison, column: str) -> str:
    """A comparison as a sentence gives it: the difference and its Holm p."""
    return f"{_difference(comparison, column)}, Holm p {format_p(comparison.p_holm)}"


def _list(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _protocol(eval_set: EvalSet, size: int, size_varies: bool) -> str:
    """How a set is evaluated (``polychrome.evaluate``), stated where its results are read."""
    input_size = f"{size} x {size} px" + (
        " for the base; the levels that set `data.size` use their own" if size_varies else ""
    )
    crop = (
        f"each photo resized (shorter side) and centre-cropped to {eval_set.eval_size} x {eval_set.eval_size}; "
        if eval_set.eval_size
        else ""
    )
    segments = (
        "BSDS500's human segmentations (first annotator)"
        if "bsds500" in eval_set.data and not eval_set.eval_size
        else "SLIC superpixels of the true photo"
    )
    return (
        f"{crop}the model sees the photo's L resized to its input size ({input_size}); the predicted ab is upsampled "
        f"bilinearly to the photo's {'cropped' if crop else 'own'} size and joined with the photo's own L, and every measure "
        f"is taken at that size; segment accuracy uses {segments}"
    )


@dataclass(frozen=True)
class Change:
    """A level's difference from the base's mean in the re-run study (``then``) and here (``now``), and the
    test of the change between them (``change_p``; ``p_holm`` over every change of the re-run)."""

    then: Comparison | None
    now: Comparison | None
    p: float | None = None
    p_holm: float | None = None

    @property
    def called(self) -> bool:
        return self.p_holm is not None and self.p_holm <= ALPHA


class _Report:
    def __init__(self, study: Study, rows: list[dict], reference: _Report | None = None):
        self.study, self.folder, self.reference = study, study.results_dir, reference
        self.numbers = StudyNumbers(study, rows)
        self.rows, self.eval_sets = self.numbers.rows, self.numbers.eval_sets
        self.references = {
            m: {
                e: {b: s[0] for b in study.baselines if (s := self.numbers.row_stat("baseline", b, e, m))}
                for e in self.eval_sets
            }
            for m in ("auc_rebalanced", "auc_raw")
        }
        size = base_config(study).data.size
        size_varies = any(s.startswith("data.size=") for f in study.factors for sets in f.levels.values() for s in sets)
        self.protocols = {e.name: _protocol(e, size, size_varies) for e in study.evaluate}
        self.tags = {
            e.name: f"{e.name} ({size}-px model input, ab upsampled to each photo's {'crop' if e.eval_size else 'own size'})"
            for e in study.evaluate
        }
        self.lines: list[str] = []

    def stat(self, factor: Factor, level: str, eval_set: str, column: str) -> Stat | None:
        return self.numbers.stat(factor, level, eval_set, column)

    def write(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.header()
        if self.study.preregistration is not None:
            from polychrome.study.preregistration import confirmatory_lines

            self.lines += confirmatory_lines(self.study, self.numbers)
        if self.rows:
            self.method()
            self.baseline_table()
            self.called()
            if self.study.findings:
                self.findings()
        if self.reference:
            self.against_reference()
        if self.rows:
            for factor in self.study.factors:
                self.factor_section(factor)
            self.cost()
            self.budget()
            self.examples()
            self.every_run()
        (self.folder / "README.md").write_text("\n".join(self.lines) + "\n")
        return self.folder / "README.md"

    def header(self) -> None:
        study = self.study
        planned = expand(study)
        have = {(r["factor"], r["level"], r["seed"]) for r in self.rows}
        missing = [run.key for run in planned if (run.factor, run.level, str(run.seed)) not in have]
        self.lines += [
            f"# Study `{study.name}`",
            "",
            _STAGES[study.stage],
            "",
            f"Generated by `polychrome study report` from `results.csv` ({len(self.rows)} rows). Base config "
            f"`{study.base.name}`{' with ' + ', '.join(f'`{s}`' for s in study.sets) if study.sets else ''}; budget: "
            f"every run sees {study.train_images:,} training images.",
        ]
        if not self.rows:
            self.lines += [
                "",
                f"**No rows yet**: none of the {len(planned)} planned runs has rows. Run "
                f"`polychrome study run` on the study file, then `polychrome study report` again.",
                "",
            ]
            return
        trained = {r["run"]: float(r["wall_s"] or 0) for r in self.rows if r["factor"] != "baseline"}
        evaluated = sum(float(r.get("eval_s") or 0) for r in self.rows)
        self.lines[-1] += (
            f" Wall time: training {sum(trained.values()) / 3600:.2f} h ({len(trained)} trainings), evaluation "
            f"{evaluated / 3600:.2f} h (rows that record it), on {', '.join(sorted({r['device'] for r in self.rows}))} (wall "
            "times depend on what else shared the machine; compute, MACs per image x training images, is the cost to compare). "
            "Each cell is the mean ± standard deviation over seeds."
        )
        self.lines.append("")
        if missing:
            self.lines += [
                f"**Incomplete: {len(planned) - len(missing)} of {len(planned)} planned runs have rows**; still to run: "
                + ", ".join(f"`{key}`" for key in missing)
                + ".",
                "",
            ]

    def method(self) -> None:
        numbers = self.numbers
        base_seeds = numbers.base_seeds()
        self.lines += (
            [
                "## Method",
                "",
                f"- **Yardstick.** Every level is compared with the base's mean over all its seeds ({base_seeds} with rows), "
                "not with one base run; the base level of each factor is shown as that mean.",
                f"- **Test.** Welch's t-test (`scipy.stats.ttest_ind`, `equal_var=False`, two-sided) between the level's seed "
                f"values and the base's, on each measure and evaluation set{self._paired_method()}; Holm's correction over every tested comparison of "
                f"this study at once ({numbers.tested} here; family-wise error {ALPHA}). A difference is called only when its Holm-adjusted p is at "
                f"most {ALPHA}; the tables give the difference from the base's mean with the raw / Holm p (bold: called). A level "
                'with one seed (or a base with one) is not tested ("one seed: not tested") and the text draws no direction from it.',
                "- **Measures.** "
                + ", ".join(
                    f"{m.label} ({'higher' if m.higher_is_better else 'lower'} is better)" for m in VERDICT_MEASURES
                )
                + "; the colourfulness distance is |colourfulness - the truth's| of a run (Hasler and Süsstrunk), so too much colour "
                "counts as much as too little. " + self._later_measures(),
                *self._interval_method(),
                "- **Cost.** Compute is MACs per image (`torch.utils.flop_counter`) x the training images a model has seen.",
            ]
            + [f"- **{name}.** {protocol}." for name, protocol in self.protocols.items()]
            + [""]
            + self._disagreement()
        )

    def _paired_method(self) -> str:
        """The method's words for the factors tested paired (decode-only ones), empty when there are none."""
        paired = [f"`{factor.name}`" for factor in self.study.factors if factor.decode_only]
        if not paired:
            return ""
        return (
            f"; a decode-only factor's levels ({_list(paired)}) decode the base's own trainings, so each is tested against "
            "the base paired by seed (`scipy.stats.ttest_rel`, two-sided, over the seeds both have): Welch would count "
            "the training's luck they share as noise"
        )

    def _disagreement(self) -> list[str]:
        """A warning, above every number, when the base's copies come from different trainings of a seed."""
        found = self.numbers.base_disagreements()
        if not found:
            return []
        sets: dict[int, list[str]] = {}
        for seed, eval_set in found:
            sets.setdefault(seed, []).append(eval_set)
        where = _list([f"seed {seed} ({', '.join(names)})" for seed, names in sets.items()])
        return [
            f"**Not consistent yet:** the base's rows under different factors hold different numbers for {where}: they "
            "evaluate different trainings of the same seed (a base run retrained after its checkpoint was gone has its "
            "copies rewritten one factor at a time, as the runner reaches them). The yardstick takes the first copy met "
            "(factors in alphabetical order); run the study with `--refresh` to the end before reading the numbers below.",
            "",
        ]

    def _later_measures(self) -> str:
        """Which rows lack the measures added after the study's first rows (false colour, test-set intervals)."""
        have, trained = self.numbers.measured("false_color")
        if have == trained:
            return "Every trained run's row has every measure."
        return (
            f"False colour and the test-set intervals came later than the first rows: {have} of {trained} trained runs' "
            "rows have them (the rest, written by an older runner, leave them empty until `polychrome study run "
            "--refresh` evaluates them again); a comparison on them uses the seeds that have them."
        )

    def _interval_method(self) -> list[str]:
        """The test-set interval beside the seed spread: per set and measure, the base's sd over seeds and the
        median half-width of the trained rows' 95% bootstrap intervals over test photos."""
        numbers = self.numbers
        widths = {(e, m): numbers.half_widths(e, m.column) for e in self.eval_sets for m in VERDICT_MEASURES}
        if not any(widths.values()):
            return [
                "- **Test-set interval: none yet.** No row has one (rows written before the intervals were added); "
                "the spreads here are over seeds (what retraining changes), not over the draw of test photos."
            ]
        lines = [
            "- **Test-set interval.** A row carries each measure's 95% bias-corrected percentile bootstrap interval over its "
            f"test photos ({REPLICATES:,} resamples of blocks of photos drawn in a seeded random order, one photo per block on sets of up to "
            f"{TARGET_BLOCKS}; `polychrome.metrics.intervals`). Beside the base's spread over seeds, the median "
            "half-width of those intervals says how far another draw of test photos would move a number: a difference "
            "between two levels measured on the same photos is not moved by that draw, so the t-tests use the seeds alone.",
            "",
            "| set | measure | base: sd over seeds | test-set 95% interval: median half-width (rows) |",
            "|---|---|---:|---:|",
        ]
        for (eval_set, m), found in widths.items():
            base = numbers.base.get((eval_set, m.column))
            spread = _format(mean_sd(base)[1], m.column) if base and len(base) > 1 else ""
            if found:
                lines.append(
                    f"| {eval_set} | {m.label} | {spread} | ±{_format(statistics.median(found), m.column)} ({len(found)}) |"
                )
        return [*lines, ""]

    def baseline_table(self) -> None:
        self.lines += [
            "## Baselines",
            "",
            "Lines in the figures: gray dashed, random dotted, mean dash-dotted.",
            "",
            "| baseline | " + " | ".join(f"{e} raw / rebalanced AuC" for e in self.eval_sets) + " |",
            "|---|" + "---:|" * len(self.eval_sets),
        ]
        for name in self.study.baselines:
            cells = [
                f"{_cell(self.numbers.row_stat('baseline', name, e, 'auc_raw'))} / "
                f"{_cell(self.numbers.row_stat('baseline', name, e, 'auc_rebalanced'))}"
                for e in self.eval_sets
            ]
            self.lines.append(f"| {name} | " + " | ".join(cells) + " |")
        self.lines += [""] + [f"*{e.name}: {e.note.strip()}*" for e in self.study.evaluate if e.note] + [""]
        for e in (
            self.eval_sets
        ):  # raw AuC rewards staying near the prior: say when a baseline beats every trained run on it
            trained = [
                float(r["auc_raw"])
                for r in self.rows
                if r["factor"] != "baseline" and r["eval_set"] == e and r.get("auc_raw")
            ]
            for name in self.study.baselines:
                stat = self.numbers.row_stat("baseline", name, e, "auc_raw")
                if trained and stat and stat[0] > max(trained):
                    self.lines += [
                        f"On {e}, `{name}` has a higher raw AuC ({stat[0]:.2f}) than every trained run (best "
                        f"{max(trained):.2f}): raw AuC rewards predicting common, unsaturated colours everywhere, which "
                        "the rebalanced AuC corrects for.",
                        "",
                    ]

    def called(self) -> None:
        comparisons = self.numbers.comparisons
        tested = [c for c in comparisons.values() if c.tested]
        uncorrected = sum(c.p is not None and c.p <= ALPHA for c in tested)
        called = [(key, c) for key, c in comparisons.items() if c.called]
        self.lines += [
            "## Differences that survive the correction",
            "",
            f"{len(tested)} comparisons tested"
            + (f" (of {len(comparisons)}; the rest have one seed)" if len(tested) < len(comparisons) else "")
            + f"; {uncorrected} {'has' if uncorrected == 1 else 'have'} p <= {ALPHA} before Holm's correction, "
            f"{len(called)} after it.",
            "",
        ]
        if called:
            widths = {key: self.numbers.half_widths(key[2], key[3], key[0], key[1]) for key, _ in called}
            shown = any(widths.values())  # the level's median test-set half-width, once rows carry intervals
            self.lines += [
                "| factor | level | set | measure | level | base | difference | test | p | Holm p |"
                + (" level's test-set ± |" if shown else ""),
                "|---|---|---|---|---:|---:|---:|---|---:|---:|" + ("---:|" if shown else ""),
            ]
            for key, c in called:
                factor, level, eval_set, column = key
                width = f" {'±' + _format(statistics.median(widths[key]), column) if widths[key] else ''} |"
                self.lines.append(
                    f"| {factor} | {level} | {eval_set} | {LABELS[column]} | {_cell(_stat(c.level_values), column)} | "
                    f"{_cell(_stat(c.base_values), column)} | {_difference(c, column)} | {TESTS[c.test]} | "
                    f"{format_p(c.p)} | {format_p(c.p_holm)} |" + (width if shown else "")
                )
            self.lines.append("")

    def findings(self) -> None:
        """One paragraph per factor: our rebalanced AuC (computed), the papers' claim and the level they lead one to
        expect (from the study file), and whether ours agrees on each set (computed), with the study file's reason if not."""
        self.lines += ["## Findings", ""]
        for factor in self.study.factors:
            claim = self.study.findings.get(factor.name)
            if claim is None:
                continue
            parts = [f"**{factor.name}.**"]
            agreements = []
            for eval_set in self.eval_sets:
                stats = {
                    level: s for level in factor.levels if (s := self.stat(factor, level, eval_set, "auc_rebalanced"))
                }
                if not stats:
                    continue
                best, worst = (
                    max(stats, key=lambda level: stats[level][0]),
                    min(stats, key=lambda level: stats[level][0]),
                )
                spread = (
                    f"rebalanced AuC runs from {_cell(stats[worst])} (`{worst}`) to {_cell(stats[best])} (`{best}`)"
                    if len(stats) > 1
                    else f"only `{best}` has rows so far (rebalanced AuC {_cell(stats[best])})"
                )
                parts.append(
                    f"On {self.tags[eval_set]}, {spread}; {self.called_sentence(factor, eval_set, 'auc_rebalanced')}."
                )
                if claim.get("expect") in stats:
                    agreements.append(self.agreement(factor, claim["expect"], eval_set, stats))
            parts.append(f"Papers: {claim.get('papers', '').strip()}")
            parts += [text for text, _ in agreements]
            if any(not agrees for _, agrees in agreements):
                parts.append(f"Likely reason: {claim.get('otherwise', 'not known').strip()}")
            self.lines += [" ".join(parts), ""]

    def called_sentence(self, factor: Factor, eval_set: str, column: str) -> str:
        """Which levels differ from the base's mean on one measure and set, after the correction."""
        comparisons = {
            level: c for level in factor.levels if (c := self.numbers.comparison(factor, level, eval_set, column))
        }
        called = [
            f"`{level}` {'better' if c.better else 'worse'} ({_said(c, column)})"
            for level, c in comparisons.items()
            if c.called
        ]
        untested = [f"`{level}`" for level, c in comparisons.items() if not c.tested]
        text = (
            "called against the base's mean: " + _list(called)
            if called
            else "no level's difference from the base's mean survives the correction"
            if len(untested) < len(comparisons)
            else "no level is tested"
        )
        return text + (f"; one seed, not tested: {_list(untested)}" if untested else "")

    def agreement(self, factor: Factor, expected: str, eval_set: str, stats: dict) -> tuple[str, bool]:
        """Whether ours agrees with the level the papers lead one to expect best (on rebalanced AuC), and the sentence:
        agrees (the expected level called better than the base, none better still), consistent (the expected level is
        the base and no level is called better), not tested (one seed, or no other level yet), does not confirm (the expected level is not
        called better, nor any other) or does not agree (another level called better)."""
        comparisons = {
            level: c
            for level in factor.levels
            if (c := self.numbers.comparison(factor, level, eval_set, "auc_rebalanced"))
        }
        better = sorted(
            (level for level, c in comparisons.items() if c.called and c.better), key=lambda level: -stats[level][0]
        )
        if self.numbers.is_base(factor, expected):
            if len(stats) == 1:
                return f"On {eval_set}, no level but `{expected}` has rows yet: nothing to set against it.", True
            if better:
                return (
                    f"Ours does not agree on {eval_set}: {_list([f'`{b}`' for b in better])} called better than `{expected}`.",
                    False,
                )
            higher = [level for level in stats if stats[level][0] > stats[expected][0]]
            untested = [f"`{level}`" for level in higher if not (level in comparisons and comparisons[level].tested)]
            if untested:
                return (
                    f"On {eval_set}, {_list(untested)} {'has' if len(untested) == 1 else 'have'} a higher mean than "
                    f"`{expected}` on one seed: not tested, so neither agreement nor disagreement.",
                    True,
                )
            return (  # nothing called against the papers: consistent with them, which is less than agreeing
                f"Ours is consistent with it on {eval_set}: no level is called better than `{expected}`"
                + (f" ({_list([f'`{level}`' for level in higher])}: a higher mean, not called)" if higher else "")
                + "."
            ), True
        c = comparisons.get(expected)
        if c is None or not c.tested:
            return f"On {eval_set}, `{expected}` has one seed: not tested, so neither agreement nor disagreement.", True
        if c.called and c.better and (not better or better[0] == expected):
            return (
                f"Ours agrees on {eval_set}: `{expected}` is called better than the base and no level is called better still.",
                True,
            )
        others = [b for b in better if b != expected]
        if others:
            return (
                f"Ours does not agree on {eval_set}: {_list([f'`{b}`' for b in others])} called better than the base "
                "with a higher mean.",
                False,
            )
        return (  # no contrary finding either: the expected gain is simply not shown
            f"Ours does not confirm it on {eval_set}: `{expected}` is not called better than the base "
            f"({_said(c, 'auc_rebalanced')}).",
            False,
        )

    def factor_section(self, factor: Factor) -> None:
        seeds = sorted({int(r["seed"]) for r in self.rows if r["factor"] == factor.name})
        self.lines += [
            "",
            f"## {factor.name}",
            "",
            "Levels: "
            + "; ".join(
                f"`{level}` = {', '.join(f'`{s}`' for s in sets) or 'base'}" for level, sets in factor.levels.items()
            )
            + f". Seeds planned: {factor.seeds}; with rows: {seeds}.",
            "",
        ]
        for eval_set in self.eval_sets:
            self.factor_tables(factor, eval_set)
        self.verdicts(factor)
        ordered = sweep(self.study, factor)
        if ordered:
            self.trends(factor, list(ordered))
        levels = list(factor.levels)
        panels = {
            m: {e: [self.stat(factor, level, e, m) for level in levels] for e in self.eval_sets}
            for m in ("auc_rebalanced", "auc_raw")
        }
        figures.plot_factor(
            factor.name,
            levels,
            panels,
            self.references,
            ordered,
            self.folder / f"{factor.name}.webp",
        )
        self.lines += [f"![{factor.name}]({factor.name}.webp)", ""]
        if ordered:
            self.lines += [
                f"*The line joins the ordered levels only ({_list([f'`{level}`' for level in ordered])}); "
                + (
                    "they sit at their values on a log axis.*"
                    if figures.on_log_axis(levels, ordered)
                    else "the other levels are categories.*"
                ),
                "",
            ]
        if factor.name in self.study.headline:
            self.curves_and_colourfulness(factor)

    def factor_tables(self, factor: Factor, eval_set: str) -> None:
        """The measures of each level on one set, then each level against the base's mean (Welch, Holm)."""
        note = next((e.note for e in self.study.evaluate if e.name == eval_set and e.note), "")
        base_compute = self.numbers.base.get((eval_set, "compute"))
        self.lines += [
            f"**{self.tags[eval_set]}**" + (f" ({note})" if note else ""),
            "",
            "| level | seeds | compute (x base) | " + " | ".join(label for _, label in TABLE) + " |",
            "|---|---:|---:|" + "---:|" * len(TABLE),
        ]
        for level in factor.levels:
            first = self.stat(factor, level, eval_set, "auc_rebalanced")
            compute = self.stat(factor, level, eval_set, "compute")
            relative = (
                f"{_format(compute[0], 'compute')} (x{compute[0] / base_compute[0]:.2f})"
                if compute and base_compute and base_compute[0]
                else ""
            )
            self.lines.append(
                f"| {level}{' (base)' if self.numbers.is_base(factor, level) and '(base)' not in level else ''} | {first[2] if first else 0} | {relative} | "
                + " | ".join(_cell(self.stat(factor, level, eval_set, c), c) for c, _ in TABLE)
                + " |"
            )
        self.lines += [
            "",
            "Against the base's mean: difference (raw p / Holm p); bold: called. "
            + (
                "Test: paired t by seed (each level decodes the base's own trainings)."
                if factor.decode_only
                else "Test: Welch."
            ),
            "",
            "| level | " + " | ".join(m.label for m in VERDICT_MEASURES) + " |",
            "|---|" + "---:|" * len(VERDICT_MEASURES),
        ]
        for level in factor.levels:
            if not self.numbers.is_base(factor, level):
                self.lines.append(
                    f"| {level} | "
                    + " | ".join(
                        _against(self.numbers.comparison(factor, level, eval_set, m.column), m.column)
                        for m in VERDICT_MEASURES
                    )
                    + " |"
                )
        self.lines.append("")

    def verdicts(self, factor: Factor) -> None:
        """A sentence per level: what it does to every measure on every set (called differences only), and
        whether it helps one measure while it hurts another."""
        self.lines += ["Verdicts, every measure against the base's mean (called differences only):", ""]
        for level in factor.levels:
            if self.numbers.is_base(factor, level):
                continue
            parts, helps, hurts = [], set(), set()
            for eval_set in self.eval_sets:
                comparisons = {
                    m: c for m in VERDICT_MEASURES if (c := self.numbers.comparison(factor, level, eval_set, m.column))
                }
                if not comparisons:
                    continue
                if not any(c.tested for c in comparisons.values()):
                    parts.append(f"on {eval_set}, one seed: not tested")
                    continue
                called = [(m, c) for m, c in comparisons.items() if c.called]
                helps |= {m.label for m, c in called if c.better}
                hurts |= {m.label for m, c in called if not c.better}
                said = [f"{'better' if c.better else 'worse'} on {m.label} ({_said(c, m.column)})" for m, c in called]
                parts.append(f"on {eval_set}, " + ("; ".join(said) if said else "no called difference on any measure"))
            if not parts:
                continue
            mixed = (
                f" It helps one measure and hurts another: better on {_list(sorted(helps))}, worse on {_list(sorted(hurts))}."
                if helps and hurts
                else ""
            )
            self.lines.append(f"- `{level}`: " + "; ".join(parts) + "." + mixed)
        self.lines.append("")

    def trends(self, factor: Factor, ordered: list[str]) -> None:
        """How rebalanced AuC, raw AuC and colourfulness move along an ordered sweep, every level included."""
        for eval_set in self.eval_sets:
            said = []
            for column, label in (
                ("auc_rebalanced", "rebalanced AuC"),
                ("auc_raw", "raw AuC"),
                ("colorfulness", "colourfulness"),
            ):
                stats = [self.stat(factor, level, eval_set, column) for level in ordered]
                if all(stats):
                    means = [s[0] for s in stats if s]
                    trend = trend_of(means)
                    where = "" if trend != "not monotonic" else f", highest at `{ordered[means.index(max(means))]}`"
                    one_seed = any(s[2] < 2 for s in stats if s)  # no direction is drawn from one seed
                    said.append(
                        f"{label} "
                        + " → ".join(f"{m:.2f}" for m in means)
                        + (" (one seed: not tested)" if one_seed else f" ({trend}{where})")
                    )
            truth = self.stat(factor, ordered[0], eval_set, "colorfulness_truth")
            if said:
                self.lines.append(
                    f"Along {' → '.join(f'`{level}`' for level in ordered)} on {eval_set}: "
                    + "; ".join(said)
                    + (f"; the truth's colourfulness is {truth[0]:.2f}" if truth else "")
                    + "."
                )
        self.lines.append("")

    def curves_and_colourfulness(self, factor: Factor) -> None:
        base_level = self.numbers.base_level(factor)
        self.lines += [
            f"Accuracy within each threshold as a difference from the base level (`{base_level}`), one panel per "
            f"`{factor.name}` level and baseline: the mean over seeds of the % of pixels within the threshold, minus "
            "the base's, in percentage points (above zero: more pixels within it than the base). The band is a 95% "
            "interval of that difference, t(0.975) with Welch-Satterthwaite degrees of freedom times Welch's "
            "standard error from the level's seeds and the base's (a baseline, one row, counts as exact; with one "
            "seed a side there is no band). Then colourfulness against the truth's:",
            "",
        ]
        for eval_set in self.eval_sets:
            curves = {}
            for name, factor_name in [
                *((b, "baseline") for b in self.study.baselines),
                *((level, factor.name) for level in factor.levels),
            ]:
                rows = [
                    r
                    for r in self.rows
                    if (r["factor"], r["level"], r["eval_set"], r["checkpoint_images"])
                    == (factor_name, name, eval_set, "")
                ]
                raw, rebalanced = _curves(rows, "raw"), _curves(rows, "rebalanced")
                if raw and rebalanced:
                    curves[name] = {"raw": raw, "rebalanced": rebalanced}
            if base_level and base_level in curves:
                figure = f"{factor.name}-curves-{eval_set}.webp"
                figures.plot_curve_grid(
                    curves, base_level, self.folder / figure, CURVE_STEP, f"{factor.name}, {eval_set}"
                )
                self.lines += [f"![{factor.name} curves on {eval_set}]({figure})", ""]
            truth = next(
                (s for level in factor.levels if (s := self.stat(factor, level, eval_set, "colorfulness_truth"))), None
            )
            self.lines += [
                f"**{eval_set}** colourfulness (Hasler and Süsstrunk), truth: {_cell(truth)}",
                "",
                "| level | colourfulness | distance to the truth | rebalanced AuC |",
                "|---|---:|---:|---:|",
            ]
            for level in factor.levels:
                self.lines.append(
                    f"| {level} | {_cell(self.stat(factor, level, eval_set, 'colorfulness'))} | "
                    f"{_cell(self.stat(factor, level, eval_set, 'colorfulness_gap'))} | "
                    f"{_cell(self.stat(factor, level, eval_set, 'auc_rebalanced'))} |"
                )
            self.lines.append("")

    def cost_points(self, eval_set: str) -> dict[str, dict[str, tuple[Stat, Stat, bool]]]:
        """Factor -> level -> (compute, rebalanced AuC, whether it is the base), for the levels with rows."""
        factors = {
            factor.name: {
                level: (compute, auc, self.numbers.is_base(factor, level))
                for level in factor.levels
                if (compute := self.stat(factor, level, eval_set, "compute"))
                and (auc := self.stat(factor, level, eval_set, "auc_rebalanced"))
            }
            for factor in self.study.factors
        }
        return {name: levels for name, levels in factors.items() if levels}

    def cost(self) -> None:
        """Each factor's rebalanced AuC against compute, beside the base trained longer or, for a study that
        re-runs another, beside the other's levels (against images and compute at once); and what the base
        gains from more compute, beside the largest called gain of a level."""
        shown = []
        for eval_set in self.eval_sets:
            factors = self.cost_points(eval_set)
            if not factors:
                continue
            compute = dict(self.numbers.budget_curve(eval_set, "compute"))
            budget: list[tuple[float, float, float]] = [
                (images, compute[images], auc)
                for images, auc in self.numbers.budget_curve(eval_set, "auc_rebalanced")
                if images in compute
            ]
            earlier = self.reference.cost_points(eval_set) if self.reference else {}
            figures.plot_cost(
                factors,
                budget,
                earlier,
                f"rebalanced AuC against compute, {eval_set}",
                self.folder / f"cost-{eval_set}.webp",
            )
            shown.append(eval_set)
        if not shown:
            return
        reading = (
            " The gray line is the base trained longer (seed 0), its first and last points labelled with the training "
            "images seen: a level above it beats what the base reaches with the same compute, and one to the right "
            "of the base's star costs more per image."
            if any(self.numbers.budget_curve(e, "auc_rebalanced") for e in shown)
            else ""
        )
        if self.reference:
            other = self.reference.study
            reading += (
                f" A hollow point joined to a level is the same level in `{other.name}` ({other.train_images:,} "
                "training images): the line is what the longer training bought it."
            )
        self.lines += [
            "",
            "## Cost",
            "",
            f"Every level trained on the same {self.study.train_images:,} images; compute, MACs per image x training "
            "images, is what they cost. One panel per factor: each level's rebalanced AuC (mean ± sd over seeds) "
            f"against its compute (log scale), the base a star; levels at about the same compute (a decode-only "
            f"factor's share one) are drawn side by side, {10**figures.COST_DODGE - 1:.0%} apart.{reading}",
            "",
        ]
        for eval_set in shown:
            self.lines += [f"![cost on {eval_set}](cost-{eval_set}.webp)", ""]
        self.lines += [sentence for eval_set in shown if (sentence := self.cost_sentence(eval_set))] + [""]

    def cost_sentence(self, eval_set: str) -> str:
        base = self.numbers.base.get((eval_set, "auc_rebalanced"))
        base_compute = self.numbers.base.get((eval_set, "compute"))
        if not base or not base_compute:
            return ""
        gains = [
            (c.difference, factor, level)
            for (factor, level, e, column), c in self.numbers.comparisons.items()
            if e == eval_set and column == "auc_rebalanced" and c.called and c.better
        ]
        text = f"On {eval_set}"
        budget = self.numbers.budget_curve(eval_set, "auc_rebalanced")
        if budget:
            images, value = budget[-1]
            text += (
                f", the base trained to {images:,} images (x{images / self.study.train_images:.1f} the compute, one seed) reaches "
                f"{value:.2f} rebalanced AuC, {value - statistics.fmean(base):+.2f} from the base's mean at the study's budget"
            )
        if gains:
            gain, factor, level = max(gains)
            factor_spec = next(f for f in self.study.factors if f.name == factor)
            compute = self.stat(factor_spec, level, eval_set, "compute")
            ratio = f", at x{compute[0] / statistics.fmean(base_compute):.2f} the base's compute" if compute else ""
            text += f"{';' if budget else ','} the largest called gain of a level at the study's budget is `{factor}: {level}` ({gain:+.2f}{ratio})"
        else:
            text += f"{';' if budget else ','} no level's gain over the base is called at the study's budget"
        return text + "."

    def budget(self) -> None:
        metrics = ("auc_rebalanced", "auc_raw")
        curve = {m: {e: self.numbers.budget_curve(e, m) for e in self.eval_sets} for m in metrics}
        points = sorted({images for m in metrics for e in self.eval_sets for images, _ in curve[m][e]})
        if not points:
            return
        self.lines += [
            "",
            "## Budget curve",
            "",
            f"The base trained longer (seed 0), evaluated along the way: do rankings made at "
            f"the study's budget ({self.study.train_images:,} images, the star in the figure: the base's all-seed mean) hold?",
            "",
            "| training images | " + " | ".join(f"{e} raw / rebalanced AuC" for e in self.eval_sets) + " |",
            "|---:|" + "---:|" * len(self.eval_sets),
        ]
        for images in points:
            cells = [
                " / ".join(
                    _format(value) if (value := dict(curve[m][e]).get(images)) is not None else ""
                    for m in ("auc_raw", "auc_rebalanced")
                )
                for e in self.eval_sets
            ]
            self.lines.append(f"| {images:,} | " + " | ".join(cells) + " |")
        own = {
            m: {e: (self.study.train_images, _stat(v)) for e in self.eval_sets if (v := self.numbers.base.get((e, m)))}
            for m in metrics
        }
        figures.plot_budget(curve, own, self.references, self.folder / "budget.webp")
        self.lines += ["", "![budget curve](budget.webp)", ""]
        for eval_set in self.eval_sets:
            gray = self.references["auc_raw"][eval_set].get("gray")
            below = [(i, v) for i, v in curve["auc_raw"][eval_set] if gray is not None and v < gray]
            if below and len(below) == len(curve["auc_raw"][eval_set]):
                self.lines.append(
                    f"On {eval_set}, the base's raw AuC is below gray's ({gray:.2f}) at every point of the budget "
                    f"curve ({min(v for _, v in below):.2f} to {max(v for _, v in below):.2f})."
                )
            elif below:
                self.lines.append(
                    f"On {eval_set}, the base's raw AuC falls below gray's ({gray:.2f}) along the budget curve at "
                    + _list([f"{i:,} images ({v:.2f})" for i, v in below])
                    + "."
                )
            elif gray is not None and curve["auc_raw"][eval_set]:
                self.lines.append(
                    f"On {eval_set}, the base's raw AuC stays above gray's ({gray:.2f}) along the budget curve."
                )
        self.lines.append("")

    def against_reference(self) -> None:
        """For a study that re-runs another at another budget: whether the other's ranking of each shared factor's
        levels (by mean rebalanced AuC) holds here."""
        other = self.reference
        assert other is not None
        self.lines += [
            "## Does the ranking hold?",
            "",
            f"Each factor's levels ordered by mean rebalanced AuC in `{other.study.name}` ({other.study.train_images:,} "
            f"training images) and here ({self.study.train_images:,}); the ranking holds when the levels with rows in both "
            "come in the same order (an order, not a test); a change of a level's difference from the base between "
            "the budgets is a finding only where it is called (the second table).",
            "",
            f"| factor | set | at {other.study.train_images:,} | here | ranking |",
            "|---|---|---|---|---|",
        ]
        changes = self.budget_changes()
        for factor, theirs in self.shared_factors():
            for eval_set in self.eval_sets:
                ours = {
                    level: s[0]
                    for level in factor.levels
                    if (s := self.stat(factor, level, eval_set, "auc_rebalanced"))
                }
                before = {
                    level: s[0]
                    for level in theirs.levels
                    if (s := other.stat(theirs, level, eval_set, "auc_rebalanced"))
                }
                then, now = _ranked(before), _ranked(ours)
                shared = [level for level in then if level in ours]
                verdict = (
                    "no rows yet"
                    if len(shared) < 2
                    else "holds"
                    if shared == [level for level in now if level in before]
                    else "changes"
                )
                tested = [
                    (lv, c)
                    for (f, lv, e), c in changes.items()
                    if (f, e) == (factor.name, eval_set) and c.p is not None
                ]
                if verdict != "no rows yet" and tested:
                    called = [f"`{level}`" for level, c in tested if c.called]
                    verdict += f"; change called: {_list(called)}" if called else "; no change called"
                self.lines.append(
                    f"| {factor.name} | {eval_set} | {_ranking(then, before)} | {_ranking(now, ours)} | {verdict} |"
                )
        self.lines.append("")
        self.differences_at_both_budgets(changes)

    def budget_changes(self) -> dict[tuple[str, str, str], Change]:
        """(factor, level, set) -> each non-base level's difference from its study's base mean there and here,
        and whether it changed (``change_p``, Holm over every tested change of the re-run)."""
        other = self.reference
        assert other is not None
        found = {}
        for factor, theirs in self.shared_factors():
            for level in [lv for lv in factor.levels if not self.numbers.is_base(factor, lv)]:
                for eval_set in self.eval_sets:
                    then = other.numbers.comparison(theirs, level, eval_set, "auc_rebalanced")
                    now = self.numbers.comparison(factor, level, eval_set, "auc_rebalanced")
                    p = None
                    if then is not None and now is not None:
                        p = change_p(
                            list(then.level_values),
                            list(then.base_values),
                            list(now.level_values),
                            list(now.base_values),
                        )
                    found[(factor.name, level, eval_set)] = Change(then, now, p)
        return correct(found)

    def shared_factors(self) -> list[tuple[Factor, Factor]]:
        """(this study's factor, the re-run study's factor of the same name) for the factors both vary."""
        assert self.reference is not None
        theirs = {f.name: f for f in self.reference.study.factors}
        return [(f, theirs[f.name]) for f in self.study.factors if f.name in theirs]

    def differences_at_both_budgets(self, changes: dict[tuple[str, str, str], Change]) -> None:
        """Each level's rebalanced-AuC difference from its study's base mean at the other budget and here, each
        with its own study's Holm p, and the change between them, tested: a swap in the ranking between levels
        that differ by less than their seeds vary is no change, and a lead that grows or shrinks with training
        shows as a number and a test."""
        other = self.reference
        assert other is not None
        self.lines += [
            "Each level's rebalanced AuC against its own study's base mean: difference (raw p / Holm p, each over "
            "its own study's comparisons; bold: called). A level stays on the same side of the base when both "
            "differences have one sign. The change is the difference here minus the one there, tested as one "
            "quantity (its standard error from the four sets of seeds, Welch-Satterthwaite degrees of freedom; "
            "`polychrome.study.significance.change_p`) with Holm's correction over the "
            f"{sum(c.p is not None for c in changes.values())} changes of this table.",
            "",
            f"| factor | level | set | at {other.study.train_images:,} | here | change (p / Holm p) | side of the base |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        for (name, level, eval_set), c in changes.items():
            if c.then is None or c.now is None:
                side, change = "no rows yet", ""
            else:
                side = "same" if (c.then.difference > 0) == (c.now.difference > 0) else "crosses"
                change = f"{c.now.difference - c.then.difference:+.2f}"
                if c.p is None:
                    change += " (one seed: not tested)"
                else:
                    change += f" ({format_p(c.p)} / {format_p(c.p_holm)})"
                    change = f"**{change}**" if c.called else change
            self.lines.append(
                f"| {name} | {level} | {eval_set} | {_against(c.then, 'auc_rebalanced')} | "
                f"{_against(c.now, 'auc_rebalanced')} | {change} | {side} |"
            )
        self.lines.append("")

    def examples(self) -> None:
        """The same photos as gray input, as each headline level colourises them (first seed), and the truth."""
        import numpy as np
        from PIL import Image

        written = False
        for eval_set in self.study.evaluate:
            paths = [
                (title, self.study.example_path(key, eval_set))
                for title, key in [*example_columns(self.study), ("truth", "truth")]
            ]
            strips = [(title, read_strip(path)) for title, path in paths if path.exists()]
            if len(strips) < 2:
                continue
            if not written:
                self.lines += ["", "## Examples", ""]
                written = True
            figure = f"examples-{eval_set.name}.webp"
            count = min(len(cells) for _, cells in strips)
            with tempfile.TemporaryDirectory() as scratch:  # drawn as a PNG, kept as a WebP like its strips
                drawn = Path(scratch) / "grid.png"
                image_grid(
                    [cells[:count] for _, cells in strips],
                    drawn,
                    [str(i + 1) for i in range(count)],
                    [title for title, _ in strips],
                    cell=1.2,
                )
                write_webp(self.folder / figure, np.asarray(Image.open(drawn).convert("RGB")))
            self.lines += [
                f"{eval_set.name}: the same {count} photos (evenly spaced through the set, centre squares), one row per"
                " model.",
                "",
                f"![examples on {eval_set.name}]({figure})",
                "",
            ]

    def every_run(self) -> None:
        self.lines += [
            "",
            "## Every run",
            "",
            "| run | " + " | ".join(EVERY_RUN) + " |",
            "|---|" + "---|" * len(EVERY_RUN),
        ]
        formatted = {c for c, _ in TABLE} | {"compute"}
        for row in self.rows:
            cells = [_format(float(row[c]), c) if c in formatted and row.get(c) else row.get(c, "") for c in EVERY_RUN]
            self.lines.append(f"| {row['run']} | " + " | ".join(cells) + " |")


def _stat(values) -> Stat:
    return mean_sd(list(values))


def _ranked(means: dict[str, float]) -> list[str]:
    return sorted(means, key=lambda level: -means[level])


def _ranking(levels: list[str], means: dict[str, float]) -> str:
    return " > ".join(f"{level} {means[level]:.2f}" for level in levels)


def _curves(rows: list[dict], kind: str) -> list[list[float]]:
    """The ``kind`` accuracy curve of each row that has one (one a seed): the figure draws their spread."""
    return [[float(v) for v in r[f"curve_{kind}"].split()] for r in rows if r.get(f"curve_{kind}")]


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


def read_rows(study: Study) -> list[dict]:
    """The rows of a study's results.csv (none before its first run)."""
    path = study.results_dir / "results.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _reference(study_path: Path) -> _Report | None:
    """The study this one re-runs at another budget or width, when its file takes its findings from another
    study file (``findings: zhang-cifar10.yaml``): that study's numbers, to set this one's ranking against."""
    findings = (yaml.safe_load(study_path.read_text()) or {}).get("findings")
    if not isinstance(findings, str) or (study_path.parent / findings).resolve() == study_path.resolve():
        return None
    other = load_study(study_path.parent / findings)
    return _Report(other, read_rows(other))


def load_report(study_path: str | Path) -> _Report:
    """A study's report before it is written: its numbers (``.numbers``) and, for a study that re-runs another,
    the changes between the two (``.budget_changes()``); what ``polychrome.study.findings`` quotes."""
    study = load_study(study_path)
    return _Report(study, read_rows(study), _reference(Path(study_path)))


def write_report(study_path: str | Path) -> Path:
    """Write ``README.md`` and its figures beside the study's results.csv (a README saying so when there are no rows yet)."""
    return load_report(study_path).write()
