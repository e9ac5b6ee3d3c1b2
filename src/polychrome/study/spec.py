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
        return self.results_dir / "examples" / f"{key}--{eval_set.name}.png"


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
    raw = yaml.safe_load(path.read_text()) or {}
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
    return study


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
