"""One run of a study, from start to rows: train it (or resume, or find it trained), evaluate it on every
set (each evaluation cached in the training's folder, so the base run, the base level of every factor, is
evaluated once per set and temperature), draw its example strips, and write its rows file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from polychrome.metrics.intervals import REPLICATES
from polychrome.study.examples import write_examples
from polychrome.study.rows import COLUMNS, CURVE_STEP, INTERVAL_MEASURES, write_rows, write_text_atomic
from polychrome.study.spec import EvalSet, Run, Study, base_config, training_config

if TYPE_CHECKING:
    from polychrome.evaluate import TruthCache


def execute(study: Study, run: Run, workers: int = 2, cache: TruthCache | None = None) -> Path:
    """Train and evaluate one run, then write its rows (atomically, to its own file). ``cache`` keeps what
    depends on the evaluation sets' true images alone (segments, the classifier's answers) across the runs
    of one runner; without it, across this run's budget points and sets."""
    from polychrome.evaluate import TruthCache
    from polychrome.models import count_parameters

    cache = cache if cache is not None else TruthCache()

    models, size, wall_s, train_images = _models(study, run)
    temperature = run.temperature if run.temperature is not None else base_config(study).temperature
    described = {
        "run": run.name,
        "factor": run.factor,
        "level": run.level,
        "seed": run.seed,
        "train_images": train_images,
        "wall_s": round(wall_s, 1),
        "device": _device(),
    }
    rows = []
    for point, model in models.items():  # point: training images at a budget-curve checkpoint, "" for the final model
        params = count_parameters(model)
        at_point = described | {
            "params": params,
            "macs": macs_per_image(model, size) if params else 0,
            "checkpoint_images": point,
            "temperature": temperature if model.card.head == "classification" else "",
        }
        for eval_set in study.evaluate:
            result = _evaluation(study, run, model, point, size, temperature, eval_set, workers, cache)
            if not point:
                write_examples(study, run.key, model, size, temperature, eval_set)
            rows.append(at_point | {"eval_set": eval_set.name} | _measured(result))
    return write_rows(study.rows_path(run), rows)


def _models(study: Study, run: Run) -> tuple[dict, int, float, int]:
    """The models a run evaluates (by budget-curve point; "" for the final one), their input size, and the
    training's wall time and images (0 for a baseline, which is fitted, not trained)."""
    from polychrome.models import load_model

    if run.is_baseline:
        base = base_config(study)
        fit_data = study.fit_data or (base.data.train if isinstance(base.data.train, str) else base.data.train[0])
        return {"": load_model(run.level, fit_data, base.data.size)}, base.data.size, 0.0, 0
    folder, wall_s = train_run(study, run)
    config = training_config(study, run)
    if run.checkpoints:
        batch = config.data.batch_size
        models = {
            str(images): load_model(str(folder / "checkpoints" / f"step{images // batch:07d}.ckpt"))
            for images in run.checkpoints
        }
    else:
        models = {"": load_model(str(folder))}
    return models, config.data.size, wall_s, config.trainer.max_steps * config.data.batch_size


def train_run(study: Study, run: Run) -> tuple[Path, float]:
    """Train (or resume, or find finished) the run's training; returns its folder and training wall time."""
    from polychrome.train import saved_step, train

    folder = study.run_folder(run)
    config = training_config(study, run)
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


def _evaluation(
    study: Study,
    run: Run,
    model,
    point: str,
    size: int,
    temperature: float,
    eval_set: EvalSet,
    workers: int,
    cache: TruthCache,
) -> dict:
    """The model's evaluation on the set, with its test-set intervals: read from the run folder's cache, or
    computed and cached there (a cached one without intervals, from an older runner, is computed again)."""
    from polychrome.evaluate import evaluate, load_classifier

    cached = study.run_folder(run) / "eval" / f"{eval_set.name}-T{temperature}{'-' + point if point else ''}.json"
    if cached.exists() and "intervals" in (result := json.loads(cached.read_text())):
        return result
    classifier = load_classifier(eval_set.classifier) if eval_set.classifier else None
    result = evaluate(
        model,
        eval_set.data,
        size,
        eval_set.eval_size,
        temperature,
        eval_set.limit,
        classifier,
        workers=workers,
        name=run.key,
        cache=cache,
        intervals=REPLICATES,
    )
    write_text_atomic(cached, json.dumps({k: v for k, v in result.items() if k != "per_image_error"}))
    return result


def _measured(result: dict) -> dict:
    """An evaluation's part of a row: its time, its accuracy curves every CURVE_STEP, its measures and their
    test-set intervals ("low high", 6 significant digits; empty where a measure has none)."""
    curves = {
        f"curve_{kind}": " ".join(f"{v:.4f}" for v in result["curves"][kind][::CURVE_STEP])
        for kind in ("raw", "rebalanced")
    }
    intervals = {
        f"interval_{m}": " ".join(f"{v:.6g}" for v in result["intervals"][m])
        for m in INTERVAL_MEASURES
        if m in result.get("intervals", {})
    }
    measures = {k: result.get(k) for k in COLUMNS if k in result}
    return {"eval_s": round(result["seconds"], 1), **curves, **measures, **intervals}


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
