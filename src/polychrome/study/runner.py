"""A study: one base training config, factors varied one at a time, every run trained, evaluated and
written as rows of ``results.csv``.

A study file (YAML) names the base config and its overrides, the training budget in images, the
evaluation sets, the baselines, and the factors: each a list of levels, each level a list of ``--set``
overrides, run with the factor's seeds. A run's id comes from its overrides and seed, so the base run is
trained once and shared by every factor, and the same command finds its runs again. Finished runs are
skipped, an interrupted one resumes from its last checkpoint (``polychrome train``'s own resume), and
each (factor, level, seed) writes its rows to a file of its own, merged into ``results.csv``: jobs that
finish together on a cluster never write the same file.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import hashlib
import io
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from polychrome.files import atomic_path

COLUMNS = ("run", "factor", "level", "seed", "eval_set", "train_images", "wall_s", "device", "params", "macs",
           "total_ab_error", "auc_raw", "auc_rebalanced", "psnr", "ssim", "colorfulness", "delta_colorfulness",
           "segment_accuracy", "classifier_accuracy", "checkpoint_images", "temperature", "colorfulness_truth", "eval_s",
           "curve_raw", "curve_rebalanced")
BASELINES = ("gray", "random", "mean")
CURVE_STEP = 5  # curve_* columns: accuracy within thresholds 0, 5, ..., 150 (Lab units), space-separated
EXAMPLE_SIDE = 96  # pixels of one example thumbnail (a centre square of the photo)


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
    findings: dict = field(default_factory=dict)  # factor -> {papers, expect, otherwise}: what the report sets ours against

    @property
    def results_dir(self) -> Path:
        return self.results_root / self.name

    @property
    def runs_dir(self) -> Path:
        return self.runs_root / self.name


@dataclass
class Run:
    """One (factor, level, seed): a training run (``train_id``), evaluated at one or more points."""

    factor: str
    level: str
    seed: int
    overrides: list[str]  # training overrides over the base (decode-only levels have none)
    temperature: float | None = None  # a decode-only level's temperature
    train_images: int | None = None  # training budget of this run
    checkpoints: list[int] = field(default_factory=list)  # budget curve: images at which to evaluate

    @property
    def train_id(self) -> str:
        return run_id(self.overrides, self.seed, self.train_images)

    @property
    def key(self) -> str:
        return f"{self.factor}--{_slug(self.level)}--s{self.seed}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "base"


def run_id(overrides: list[str], seed: int, train_images: int | None = None) -> str:
    """Readable and stable: the overrides in short, a hash of them, the seed (and a longer budget)."""
    canonical = json.dumps([sorted(overrides), seed, train_images])
    short = [f"{key.split('.')[-1]}-{value.split(':')[-1].split('/')[-1]}" for key, _, value in (o.partition("=") for o in sorted(overrides))]
    readable = _slug("_".join(short))[:48] if overrides else "base"
    budget = f"-{train_images}img" if train_images else ""
    return f"{readable}{budget}-s{seed}-{hashlib.sha1(canonical.encode()).hexdigest()[:6]}"


def _strict(cls, values: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown key {', '.join(unknown)} in {where}; valid: {', '.join(sorted(names))}")
    return values


def load_study(path: str | Path) -> Study:
    """Read and check a study file; paths in it are relative to the file's folder (base) or the current one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no study file at {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    _strict(Study, raw, str(path))
    factors = []
    for name, spec in (raw.get("factors") or {}).items():
        spec = _strict(Factor, dict(spec), f"factor {name}")
        levels = {str(level): list(sets or []) for level, sets in spec["levels"].items()}
        factors.append(Factor(name, levels, list(spec.get("seeds", [0])), bool(spec.get("decode_only", False))))
    study = Study(
        name=raw.get("name", path.stem),
        base=(path.parent / raw["base"]).resolve() if "base" in raw else None,
        train_images=int(raw["train_images"]),
        evaluate=[EvalSet(**_strict(EvalSet, dict(e), "evaluate")) for e in raw.get("evaluate", [])],
        factors=factors,
        sets=list(raw.get("sets", [])),
        baselines=list(raw.get("baselines", BASELINES)),
        fit_data=raw.get("fit_data"),
        budget_curve=raw.get("budget_curve"),
        runs_root=Path(raw.get("runs_root", "runs")),
        results_root=Path(raw.get("results_root", "docs/study")),
        slurm=dict(raw.get("slurm", {})),
        examples=int(raw.get("examples", 8)),
        headline=list(raw.get("headline", ["loss"])),
        findings=_findings(raw.get("findings"), path),
    )
    if study.base is None or not study.base.is_file():
        raise ValueError(f"{path}: base must name a training config file, got {raw.get('base')!r}")
    base_config(study)  # fails early on a bad override
    return study


def _findings(value, path: Path) -> dict:
    """A study's findings: a mapping, or the name of another study file (beside this one) whose findings apply."""
    if isinstance(value, str):
        other = path.parent / value
        if not other.is_file():
            raise ValueError(f"{path}: findings names {value!r}, which is not a study file beside it")
        return dict((yaml.safe_load(other.read_text()) or {}).get("findings") or {})
    return dict(value or {})


def base_config(study: Study, overrides: list[str] = (), seed: int = 0, train_images: int | None = None):
    """The training config of a run: base file, the study's sets, the level's overrides, the seed, the budget."""
    from polychrome.config import load_config

    config = load_config(study.base, [*study.sets, *overrides, f"trainer.seed={seed}", f"data.seed={seed}"])
    images = train_images or study.train_images
    config.trainer.max_steps = max(1, images // config.data.batch_size)
    return config


def expand(study: Study) -> list[Run]:
    """Every (factor, level, seed) of the study, baselines and the budget curve included."""
    runs = [Run("baseline", name, 0, []) for name in study.baselines]
    for factor in study.factors:
        for level, sets in factor.levels.items():
            for seed in factor.seeds:
                if factor.decode_only:
                    (temperature,) = [float(s.split("=", 1)[1]) for s in sets if s.startswith("temperature=")] or [None]
                    if temperature is None:
                        raise ValueError(f"decode-only factor {factor.name}: level {level} sets no temperature=")
                    runs.append(Run(factor.name, level, seed, [], temperature=temperature))
                else:
                    runs.append(Run(factor.name, level, seed, list(sets)))
    if study.budget_curve:
        longer = study.train_images * int(study.budget_curve.get("factor", 4))
        points = int(study.budget_curve.get("points", 5))
        runs.append(Run("budget", f"x{study.budget_curve.get('factor', 4)}", 0, [], train_images=longer,
                        checkpoints=[longer * (k + 1) // points for k in range(points)]))
    return runs


def select(runs: list[Run], pattern: str | None) -> list[Run]:
    return [r for r in runs if pattern is None or fnmatch.fnmatch(r.key, pattern) or fnmatch.fnmatch(r.train_id, pattern)]


def rows_path(study: Study, run: Run) -> Path:
    return study.results_dir / "rows" / f"{run.key}.csv"


def example_path(study: Study, key: str, eval_set: EvalSet) -> Path:
    """A strip of the evaluation set's example photos as ``key`` colourises them (``truth`` for the originals)."""
    return study.results_dir / "examples" / f"{key}--{eval_set.name}.png"


def _complete(study: Study, run: Run) -> bool:
    """Rows written with the current columns, and the example strips written (rows of an older runner are
    rewritten from the cached evaluations, without training or evaluating again)."""
    path = rows_path(study, run)
    if not path.exists():
        return False
    with open(path, newline="") as f:
        if tuple(next(csv.reader(f), [])) != COLUMNS:
            return False
    return bool(run.checkpoints) or all(example_path(study, run.key, e).exists() for e in study.evaluate)


def state(study: Study, run: Run) -> str:
    """done (rows and examples written), trained, partial (checkpoints, unfinished), pending, or baseline."""
    if _complete(study, run):
        return "done"
    if run.factor == "baseline":
        return "pending"
    from polychrome.train import saved_step

    config = base_config(study, run.overrides, run.seed, run.train_images)
    step = saved_step(study.runs_dir / run.train_id / "checkpoints" / "last.ckpt")
    return "trained" if step >= config.trainer.max_steps else "partial" if step >= 0 else "pending"


def _device() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def macs_per_image(model, size: int) -> int:
    """Multiply-accumulates of one forward pass at size x size (torch's FLOP counter / 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.full((1, 1, size, size), 50.0))
    return counter.get_total_flops() // 2


def _train(study: Study, run: Run) -> tuple[Path, float]:
    """Train (or resume, or find finished) the run's training; returns its folder and training wall time."""
    from polychrome.train import saved_step, train

    folder = study.runs_dir / run.train_id
    config = base_config(study, run.overrides, run.seed, run.train_images)
    if run.checkpoints:  # keep a checkpoint at every evaluation point
        every = run.checkpoints[0] // config.data.batch_size
        config.trainer.checkpoint_every, config.trainer.keep_last = every, len(run.checkpoints) + 1
    timing = folder / "study-wall.json"
    if saved_step(folder / "checkpoints" / "last.ckpt") < config.trainer.max_steps:
        start = time.perf_counter()
        try:
            train(config, folder)
        finally:  # an interrupted training's time counts too (it resumes from its checkpoint)
            folder.mkdir(parents=True, exist_ok=True)
            spent = json.loads(timing.read_text())["wall_s"] if timing.exists() else 0.0
            timing.write_text(json.dumps({"wall_s": spent + time.perf_counter() - start}))
    return folder, json.loads(timing.read_text())["wall_s"] if timing.exists() else float("nan")


def _source(run: Run) -> Run:
    """The run whose training a run evaluates: the base's for a decode-only level, else its own."""
    return Run("base", "base", run.seed, []) if run.temperature is not None else run


def run_folder(study: Study, run: Run) -> Path:
    """Where a run's training (or a baseline's evaluations) lives."""
    return study.runs_dir / "baselines" / run.level if run.factor == "baseline" else study.runs_dir / _source(run).train_id


def execute(study: Study, run: Run, workers: int = 2) -> Path:
    """Train and evaluate one run, then write its rows (atomically, to its own file)."""
    from polychrome.evaluate import evaluate, load_classifier
    from polychrome.inference import load_model
    from polychrome.models import count_parameters

    rows, wall_s, train_images = [], 0.0, 0
    if run.factor == "baseline":
        base = base_config(study)
        fit_data = study.fit_data or (base.data.train if isinstance(base.data.train, str) else base.data.train[0])
        models = {"": load_model(run.level, fit_data, base.data.size)}
        size, folder = base.data.size, run_folder(study, run)
    else:
        source = _source(run)
        folder, wall_s = _train(study, source)
        config = base_config(study, source.overrides, source.seed, source.train_images)
        size, train_images = config.data.size, config.trainer.max_steps * config.data.batch_size
        if run.checkpoints:
            batch = config.data.batch_size
            models = {str(images): load_model(str(folder / "checkpoints" / f"step{images // batch:07d}.ckpt")) for images in run.checkpoints}
        else:
            models = {"": load_model(str(folder))}
    temperature = run.temperature if run.temperature is not None else base_config(study).temperature
    for point, model in models.items():
        params = count_parameters(model)
        macs = macs_per_image(model, size) if params else 0
        for eval_set in study.evaluate:
            # The base run is the base level of every factor: evaluate it once per set and temperature.
            cached = folder / "eval" / f"{eval_set.name}-T{temperature}{'-' + point if point else ''}.json"
            if cached.exists():
                result = json.loads(cached.read_text())
            else:
                classifier = load_classifier(eval_set.classifier) if eval_set.classifier else None
                result = evaluate(model, eval_set.data, size, eval_set.eval_size, temperature, eval_set.limit, classifier,
                                  workers=workers, name=run.key)
                _write_atomic(cached, json.dumps({k: v for k, v in result.items() if k != "per_image_error"}))
            if not point:
                write_examples(study, run.key, model, size, temperature, eval_set)
            curves = {f"curve_{kind}": " ".join(f"{v:.4f}" for v in result["curves"][kind][::CURVE_STEP]) for kind in ("raw", "rebalanced")}
            rows.append({
                "run": run.train_id if run.factor != "baseline" else run.level, "factor": run.factor, "level": run.level,
                "seed": run.seed, "eval_set": eval_set.name, "train_images": train_images, "wall_s": round(wall_s, 1),
                "device": _device(), "params": params, "macs": macs, "checkpoint_images": point,
                "temperature": temperature if model.head == "classification" else "",
                "eval_s": round(result["seconds"], 1), **curves,
                **{k: result.get(k) for k in COLUMNS if k in result},
            })
    target = rows_path(study, run)
    _write_atomic(target, _csv([{k: "" if row.get(k) is None else row.get(k) for k in COLUMNS} for row in rows]))
    return target


def example_photos(eval_set: EvalSet, count: int) -> list:
    """``count`` colour photos of the set, the same for every run: evenly spaced through it, each moved
    on to the next colour one where it falls on a grayscale image (which evaluation skips)."""
    from polychrome.color import is_grayscale, uint8_to_lab
    from polychrome.data import open_dataset

    dataset = open_dataset(eval_set.data)
    photos, index = [], 0
    for k in range(count):
        index = max(index, k * len(dataset) // count)
        while index < len(dataset):
            image = dataset[index][0]
            index += 1
            if not bool(is_grayscale(uint8_to_lab(image[None])[:, 1:])):
                photos.append(image)
                break
    return photos


def _thumbnail(image) -> np.ndarray:
    """The centre square of a uint8 (3, H, W) image at EXAMPLE_SIDE pixels (nearest when enlarging a tiny one)."""
    from PIL import Image

    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[:, top : top + side, left : left + side].permute(1, 2, 0).numpy())
    return np.asarray(square.resize((EXAMPLE_SIDE, EXAMPLE_SIDE), Image.NEAREST if side < EXAMPLE_SIDE else Image.LANCZOS))


def write_examples(study: Study, key: str, model, size: int, temperature: float, eval_set: EvalSet) -> None:
    """The set's example photos colourised by ``model``, side by side in one PNG (and the originals, once)."""
    from polychrome.data import write_png
    from polychrome.inference import colorize_images

    photos = example_photos(eval_set, study.examples)
    strips = {key: colorize_images(model, photos, size, temperature)}
    if not example_path(study, "truth", eval_set).exists():
        strips["truth"] = photos
    for name, images in strips.items():
        with atomic_path(example_path(study, name, eval_set)) as temporary, open(temporary, "wb") as f:
            write_png(f, np.concatenate([_thumbnail(image) for image in images], axis=1))


@contextmanager
def _claimed(study: Study, run: Run):
    """Yield whether this process may work on the run's training folder: False while another live runner on
    this machine holds it (two ``--only`` runners side by side never train one run twice)."""
    folder = run_folder(study, run)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".study-claim"
    if not _take_claim(lock):
        yield False
        return
    try:
        yield True
    finally:
        lock.unlink(missing_ok=True)


def _take_claim(lock: Path) -> bool:
    """Create ``lock`` holding this process's id; False if a live process holds it. A claim left by a
    process that is gone is removed and taken over."""
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = lock.read_text().strip()
            if owner.isdigit() and _alive(int(owner)):
                return False
            lock.unlink(missing_ok=True)
        else:
            os.write(handle, str(os.getpid()).encode())
            os.close(handle)
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _write_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, newline="")


def merge_rows(study: Study) -> Path:
    """results.csv: every run's rows, in a fixed order (factor, level, seed, eval set)."""
    rows = []
    for path in sorted((study.results_dir / "rows").glob("*.csv")):
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    rows.sort(key=lambda r: (r["factor"], r["level"], int(r["seed"]), r["eval_set"], r["checkpoint_images"]))
    out = study.results_dir / "results.csv"
    _write_atomic(out, _csv(rows))
    return out


def run_study(path: str | Path, only: str | None = None, dry_run: bool = False, executor: str = "local",
              workers: int = 2, log=print) -> list[tuple[Run, str]]:
    """Run (or list, with ``dry_run``) the study's unfinished runs; returns each selected run and its state."""
    study = load_study(path)
    runs = select(expand(study), only)
    states = [(run, state(study, run)) for run in runs]
    if dry_run:
        return states
    pending = [run for run, s in states if s != "done"]
    if executor == "slurm":
        import submitit

        slurm = submitit.AutoExecutor(folder=study.runs_dir / "slurm")
        slurm.update_parameters(**({"timeout_min": 240} | study.slurm))
        jobs = [slurm.submit(_execute_from_file, str(path), run.key, workers) for run in pending]
        log(f"submitted {len(jobs)} jobs: {', '.join(job.job_id for job in jobs)}; run `polychrome study run {path}` again to merge their rows")
    elif executor == "local":
        for k, run in enumerate(pending, 1):
            log(f"[{k}/{len(pending)}] {run.key} ({run.train_id if run.factor != 'baseline' else 'baseline'})")
            with _claimed(study, run) as mine:
                if mine:
                    execute(study, run, workers)
                else:
                    log(f"  skipped: another runner on this machine is working on {run.train_id}")
    else:
        raise ValueError(f"executor must be local or slurm, got {executor!r}")
    merge_rows(study)
    return [(run, state(study, run)) for run in runs]


def _execute_from_file(path: str, key: str, workers: int) -> str:
    """What a cluster job runs: the same ``execute`` as the local executor."""
    study = load_study(path)
    (run,) = [r for r in expand(study) if r.key == key]
    return str(execute(study, run, workers))
