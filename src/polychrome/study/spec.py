"""What a study is: the study file read into dataclasses, and expanded into its runs.

A study file (YAML) names the base config and its overrides, the training budget in images, the
evaluation sets, the baselines, and the factors: each a list of levels, each level a list of ``--set``
overrides, run with the factor's seeds. A run is one (factor, level, seed); its identity (its key, the id
of the training it evaluates, its folder and rows file) is written once, in ``Run`` and ``Study`` here, and
every other module reads it from there.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polychrome.config import TrainConfig, check_keys, load_config

BASELINES = ("gray", "random", "mean")


@dataclass
class EvalSet:
    name: str  # the eval_set column: cifar10-test, bsds500-test, imagenette-heldout, ...
    data: str  # dataset spec
    limit: int | None = None
    eval_size: int | None = None
    classifier: str | None = None  # run directory of a task=classify run, for classifier_accuracy
    note: str = ""  # a caveat the report prints next to this set's numbers (e.g. a JPEG-derived copy)


@dataclass
class Factor:
    name: str
    levels: dict[str, list[str]]  # level name -> overrides ([] = the base)
    seeds: list[int] = field(default_factory=lambda: [0])
    decode_only: bool = False  # levels change only decoding (temperature): evaluate the base checkpoint


@dataclass
class Hypothesis:
    """One pre-registered comparison: a level of the study against its base, on the primary endpoint."""

    comparison: str  # "factor: level", a level of this study (not the base)
    expect: str  # "higher" or "lower": the direction the screening's lead points (the test is two-sided)
    statement: str = ""  # the hypothesis in words

    @property
    def factor(self) -> str:
        return self.comparison.split(":", 1)[0].strip()

    @property
    def level(self) -> str:
        return self.comparison.split(":", 1)[1].strip()


@dataclass
class Endpoint:
    measure: str  # a verdict measure's column, e.g. auc_rebalanced
    eval_set: str  # the name of one of the study's evaluation sets: a held-out set no run trains on


@dataclass
class PowerPlan:
    """How the seeds were chosen (``polychrome study plan``): the spread over seeds of a pilot study's rows."""

    pilot: str  # a study file beside this one, whose results.csv gives the spread over seeds
    difference: float  # the smallest true difference of the primary endpoint the design is to find
    power: float = 0.8  # with this probability, per comparison, at the family's corrected level
    eval_set: str | None = None  # the pilot's set (default: the primary endpoint's)
    spread: str = "arms"  # arms (base: the base's seeds; a level: the pilot's levels pooled), base or pooled
    sd: float | None = None  # an explicit spread over seeds for both arms, instead of the pilot's
    correlation: float = 0.0  # the per-seed correlation of a level with the base assumed for the paired variant


@dataclass
class Preregistration:
    """What a confirmatory study commits to before its first run. Its family is its hypotheses, nothing else:
    every other comparison the report makes is exploratory."""

    hypotheses: list[Hypothesis]
    primary_endpoint: Endpoint
    alpha: float  # family-wise error rate over the hypotheses
    seeds: list[int]  # every arm of the family is trained at exactly these seeds
    stopping_rule: str
    exploratory: str  # what is not pre-registered
    test: str = "welch"  # welch (unpaired) or paired (by seed)
    correction: str = "holm"  # holm or bonferroni, over the hypotheses
    power: PowerPlan | None = None
    cost: str = ""  # the measured cost of the design, in words
    command: str = ""  # the exact command that runs it
    verbatim: str = ""  # the block as the study file has it (set by the loader; the report prints it)


@dataclass
class Run:
    """One (factor, level, seed): a training (``train_id``) evaluated at one or more points, or a baseline."""

    factor: str
    level: str
    seed: int
    overrides: list[str]  # training overrides over the base (decode-only levels have none)
    temperature: float | None = None  # a decode-only level's temperature
    train_images: int | None = None  # training budget of this run (None: the study's)
    checkpoints: list[int] = field(default_factory=list)  # budget curve: images at which to evaluate

    @property
    def key(self) -> str:
        """``factor--level--sSEED``: names its rows file and example strips; what ``--only`` and a cluster job find it by."""
        return f"{self.factor}--{_slug(self.level)}--s{self.seed}"

    @property
    def is_baseline(self) -> bool:
        return self.factor == "baseline"

    @property
    def train_id(self) -> str:
        """The training it evaluates, readable and stable: the overrides in short, a hash of them, the seed (and
        a longer budget). Runs with the same training share it: the base level of every factor is trained
        once, a decode-only level evaluates the base's checkpoint, and the same command finds them again."""
        canonical = json.dumps([sorted(self.overrides), self.seed, self.train_images])
        short = [
            f"{key.split('.')[-1]}-{value.split(':')[-1].split('/')[-1]}"
            for key, _, value in (o.partition("=") for o in sorted(self.overrides))
        ]
        readable = _slug("_".join(short))[:48] if self.overrides else "base"
        budget = f"-{self.train_images}img" if self.train_images else ""
        return f"{readable}{budget}-s{self.seed}-{hashlib.sha1(canonical.encode()).hexdigest()[:6]}"

    @property
    def name(self) -> str:
        """The ``run`` column of its rows: the training's id, or the baseline's name."""
        return self.level if self.is_baseline else self.train_id


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "base"


@dataclass
class Study:
    name: str
    base: Path  # training config the factors vary
    train_images: int  # every run sees this many training images (steps = train_images / batch size)
    evaluate: list[EvalSet]
    factors: list[Factor]
    sets: list[str] = field(default_factory=list)  # overrides of the base shared by every run
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    fit_data: str | None = None  # what random/mean are fitted on (default: the base's training data)
    budget_curve: dict | None = None  # {"factor": 4, "points": 5}: the base trained longer, evaluated along the way
    runs_root: Path = Path("runs")
    results_root: Path = Path("docs/study")
    slurm: dict = field(default_factory=dict)  # submitit parameters for --executor slurm
    examples: int = 8  # photos of each evaluation set shown colourised by every run (the report's grid)
    headline: list[str] = field(default_factory=lambda: ["loss"])  # factors whose levels the example grid shows
    findings: dict = field(
        default_factory=dict
    )  # factor -> {papers, expect, otherwise}: what the report sets ours against
    preregistration: Preregistration | None = None  # a confirmatory study's; None: a screening (exploratory)

    @property
    def stage(self) -> str:
        """ "confirmatory" (pre-registered) or "screening" (exploratory)."""
        return "confirmatory" if self.preregistration else "screening"

    @property
    def results_dir(self) -> Path:
        return self.results_root / self.name

    @property
    def runs_dir(self) -> Path:
        return self.runs_root / self.name

    def run_folder(self, run: Run) -> Path:
        """Where a run's training (or a baseline's evaluations) lives: one folder per training, shared by
        every run that evaluates it."""
        return self.runs_dir / "baselines" / run.level if run.is_baseline else self.runs_dir / run.train_id

    @property
    def rows_dir(self) -> Path:
        return self.results_dir / "rows"

    def rows_path(self, run: Run) -> Path:
        """A file of rows per run, merged into ``results.csv``: jobs that finish together never write one file."""
        return self.rows_dir / f"{run.key}.csv"

    def example_path(self, key: str, eval_set: EvalSet) -> Path:
        """A strip of the evaluation set's example photos as the run ``key`` colourises them (``truth``: the originals)."""
        return self.results_dir / "examples" / f"{key}--{eval_set.name}.webp"


# How each optional key of a study file is read; a key the file leaves out keeps the dataclass's default.
_OPTIONAL = {
    "sets": list,
    "baselines": list,
    "runs_root": Path,
    "results_root": Path,
    "slurm": dict,
    "examples": int,
    "headline": list,
}


def load_study(path: str | Path) -> Study:
    """Read and check a study file; paths in it are relative to the file's folder (base) or the current one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no study file at {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:  # a line and column a user can fix, not a traceback
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    check_keys(Study, raw, source=str(path))
    base = (path.parent / raw["base"]).resolve() if "base" in raw else None
    if base is None or not base.is_file():
        raise ValueError(f"{path}: base must name a training config file, got {raw.get('base')!r}")
    factors = [_factor(name, spec, path) for name, spec in (raw.get("factors") or {}).items()]
    study = Study(
        name=raw.get("name", path.stem),
        base=base,
        train_images=int(raw["train_images"]),
        evaluate=[_eval_set(spec, path) for spec in raw.get("evaluate", [])],
        factors=factors,
        fit_data=raw.get("fit_data"),
        budget_curve=raw.get("budget_curve"),
        findings=_findings(raw.get("findings"), path),
        **{key: read(raw[key]) for key, read in _OPTIONAL.items() if key in raw},
    )
    base_config(study)  # fails early on a bad override
    if "preregistration" in raw:
        study.preregistration = _preregistration(raw["preregistration"], study, path)
    return study


def _mapping(value, where: str, path: Path) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: {where} must be a mapping, got {value!r}")
    return dict(value)


def _preregistration(value, study: Study, path: Path) -> Preregistration:
    """Read the ``preregistration:`` block strictly, and check it against the study it registers: its
    comparisons are levels of the study, its endpoint one of its measures and sets, its seeds every
    compared arm's."""
    where = "preregistration."
    spec = _mapping(value, "preregistration", path)
    check_keys(Preregistration, spec, where, str(path))
    if "verbatim" in spec:
        raise ValueError(
            f"{path}: preregistration.verbatim is set by the loader (the block's own text), not in the file"
        )
    missing = [
        key
        for key in ("hypotheses", "primary_endpoint", "alpha", "seeds", "stopping_rule", "exploratory")
        if key not in spec
    ]
    if missing:
        raise ValueError(f"{path}: preregistration needs {', '.join(missing)}")
    hypotheses = []
    for k, item in enumerate(spec["hypotheses"] or []):
        item = _mapping(item, f"{where}hypotheses[{k}]", path)
        check_keys(Hypothesis, item, f"{where}hypotheses[{k}].", str(path))
        hypotheses.append(Hypothesis(**{key: str(v) for key, v in item.items()}))
    if not hypotheses:
        raise ValueError(f"{path}: preregistration.hypotheses is empty; a confirmatory study tests at least one")
    endpoint = _mapping(spec["primary_endpoint"], f"{where}primary_endpoint", path)
    check_keys(Endpoint, endpoint, f"{where}primary_endpoint.", str(path))
    plan = None
    if spec.get("power") is not None:
        power = _mapping(spec["power"], f"{where}power", path)
        check_keys(PowerPlan, power, f"{where}power.", str(path))
        plan = PowerPlan(**power)
    registered = Preregistration(
        hypotheses=hypotheses,
        primary_endpoint=Endpoint(**endpoint),
        alpha=float(spec["alpha"]),
        seeds=[int(seed) for seed in spec["seeds"]],
        stopping_rule=str(spec["stopping_rule"]).strip(),
        exploratory=str(spec["exploratory"]).strip(),
        test=str(spec.get("test", "welch")),
        correction=str(spec.get("correction", "holm")),
        power=plan,
        cost=str(spec.get("cost", "")).strip(),
        command=str(spec.get("command", "")).strip(),
        verbatim=_block(path, "preregistration"),
    )
    problems = _preregistration_problems(registered, study)
    if problems:
        raise ValueError(f"{path}: preregistration: " + "; ".join(problems))
    return registered


def _preregistration_problems(registered: Preregistration, study: Study) -> list[str]:
    """What is wrong with a read pre-registration against the study it registers, each in words."""
    from polychrome.study.power import CORRECTIONS, TESTS
    from polychrome.study.rows import INTERVAL_MEASURES

    endpoint, hypotheses, plan = vars(registered.primary_endpoint), registered.hypotheses, registered.power
    problems = []
    if not 0 < registered.alpha < 1:
        problems.append(f"alpha must be between 0 and 1, got {registered.alpha}")
    if registered.test not in TESTS:
        problems.append(f"test must be one of {', '.join(TESTS)}, got {registered.test!r}")
    if registered.correction not in CORRECTIONS:
        problems.append(f"correction must be one of {', '.join(CORRECTIONS)}, got {registered.correction!r}")
    if endpoint.get("measure") not in INTERVAL_MEASURES:
        problems.append(
            f"primary_endpoint.measure must be one of {', '.join(INTERVAL_MEASURES)}, got {endpoint.get('measure')!r}"
        )
    if endpoint.get("eval_set") not in [e.name for e in study.evaluate]:
        problems.append(
            f"primary_endpoint.eval_set must name one of the study's evaluation sets "
            f"({', '.join(e.name for e in study.evaluate)}), got {endpoint.get('eval_set')!r}"
        )
    factors = {f.name: f for f in study.factors}
    for h in hypotheses:
        factor = factors.get(h.factor) if ":" in h.comparison else None
        if factor is None or h.level not in factor.levels:
            choices = [f"{f.name}: {level}" for f in study.factors for level, sets in f.levels.items() if sets]
            problems.append(f"hypothesis {h.comparison!r} names no level of the study; levels: {'; '.join(choices)}")
        elif not factor.levels[h.level] or factor.decode_only:
            problems.append(
                f"hypothesis {h.comparison!r} must compare a trained level with the base, not the base itself"
            )
        elif sorted(factor.seeds) != sorted(registered.seeds):
            problems.append(
                f"factor {factor.name} runs seeds {factor.seeds}, the preregistration's are {registered.seeds}"
            )
        if h.expect not in ("higher", "lower"):
            problems.append(f"hypothesis {h.comparison!r}: expect must be higher or lower, got {h.expect!r}")
    if len({h.comparison for h in hypotheses}) < len(hypotheses):
        problems.append("a comparison appears in two hypotheses")
    if plan is not None and plan.spread not in ("arms", "base", "pooled"):
        problems.append(f"power.spread must be arms, base or pooled, got {plan.spread!r}")
    return problems


def _block(path: Path, key: str) -> str:
    """The text of the top-level ``key:`` block of a YAML file, as written (comments included): from its line
    to the next top-level key."""
    lines = path.read_text().splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = next((k for k in range(start + 1, len(lines)) if lines[k][:1] not in ("", " ", "#", "-")), len(lines))
    while lines[end - 1][:1] in ("", "#"):  # a comment above the next key belongs to that key
        end -= 1
    return "\n".join(lines[start:end]).rstrip() + "\n"


def _factor(name: str, spec: dict, path: Path) -> Factor:
    spec = dict(spec)
    check_keys(Factor, spec, f"factors.{name}.", str(path))
    levels = {str(level): list(sets or []) for level, sets in spec["levels"].items()}
    options: dict[str, Any] = {
        key: read(spec[key]) for key, read in (("seeds", list), ("decode_only", bool)) if key in spec
    }
    return Factor(name, levels, **options)


def _eval_set(spec: dict, path: Path) -> EvalSet:
    spec = dict(spec)
    check_keys(EvalSet, spec, "evaluate.", str(path))
    return EvalSet(**spec)


def _findings(value, path: Path) -> dict:
    """A study's findings: a mapping, or the name of another study file (beside this one) whose findings apply."""
    if isinstance(value, str):
        other = path.parent / value
        if not other.is_file():
            raise ValueError(f"{path}: findings names {value!r}, which is not a study file beside it")
        return dict((yaml.safe_load(other.read_text()) or {}).get("findings") or {})
    return dict(value or {})


def base_config(
    study: Study, overrides: Sequence[str] = (), seed: int = 0, train_images: int | None = None
) -> TrainConfig:
    """The training config of a run: base file, the study's sets, the level's overrides, the seed, the budget."""
    config = load_config(study.base, [*study.sets, *overrides, f"trainer.seed={seed}", f"data.seed={seed}"])
    images = train_images or study.train_images
    config.trainer.max_steps = max(1, images // config.data.batch_size)
    return config


def training_config(study: Study, run: Run) -> TrainConfig:
    """The config of the training ``run`` evaluates."""
    return base_config(study, run.overrides, run.seed, run.train_images)


def expand(study: Study) -> list[Run]:
    """Every (factor, level, seed) of the study, baselines and the budget curve included."""
    runs = [Run("baseline", name, 0, []) for name in study.baselines]
    for factor in study.factors:
        for level, sets in factor.levels.items():
            for seed in factor.seeds:
                if factor.decode_only:
                    runs.append(Run(factor.name, level, seed, [], temperature=_decode_temperature(factor, level, sets)))
                else:
                    runs.append(Run(factor.name, level, seed, list(sets)))
    if study.budget_curve:
        longer = study.train_images * int(study.budget_curve.get("factor", 4))
        points = int(study.budget_curve.get("points", 5))
        runs.append(
            Run(
                "budget",
                f"x{study.budget_curve.get('factor', 4)}",
                0,
                [],
                train_images=longer,
                checkpoints=[longer * (k + 1) // points for k in range(points)],
            )
        )
    return runs


def _decode_temperature(factor: Factor, level: str, sets: list[str]) -> float:
    """A decode-only level's temperature: its ``temperature=`` setting (it trains nothing of its own)."""
    temperatures = [float(s.split("=", 1)[1]) for s in sets if s.startswith("temperature=")]
    if not temperatures:
        raise ValueError(f"decode-only factor {factor.name}: level {level} sets no temperature=")
    (temperature,) = temperatures
    return temperature


def select(runs: list[Run], pattern: str | None) -> list[Run]:
    """The runs whose key or training id matches the glob ``pattern`` (all of them for None)."""
    return [
        r for r in runs if pattern is None or fnmatch.fnmatch(r.key, pattern) or fnmatch.fnmatch(r.train_id, pattern)
    ]
