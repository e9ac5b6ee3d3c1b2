"""``polychrome train``: one run in one directory, resumable by running the same command again.

The run directory holds ``config.yaml`` (the resolved config), ``run.json`` (git revision, command and
start time of every session), ``logs/`` (metrics as CSV, one file per session) and ``tb/``
(TensorBoard), and ``checkpoints/`` (``last.ckpt``, the last ``keep_last`` periodic ones, ``best.ckpt``
by validation rebalanced AuC). Lightning writes checkpoints atomically, so a kill -9 loses at most
``trainer.checkpoint_every`` steps.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import torch

from polychrome.classifier import export_classifier
from polychrome.color import rebalancing_weights
from polychrome.config import TrainConfig, config_to_dict, load_config, save_config
from polychrome.losses import CLASSIFICATION_LOSSES

# Settings a resumed run may change (how long, how often); anything else means a different experiment.
RESUMABLE_CHANGES = {
    "trainer.max_steps",
    "trainer.max_minutes",
    "trainer.val_every",
    "trainer.checkpoint_every",
    "trainer.log_every",
    "trainer.progress",
    "trainer.keep_last",
    "data.workers",
    "trainer.devices",
    "trainer.accelerator",
    "trainer.threads",  # same experiment, other rounding: run.json records each session's threads
}


class RunDirError(Exception):
    """A run directory that holds a different experiment."""


def git_revision() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        return revision + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):  # a copy without .git (a lent machine) may be told its revision
        return os.environ.get("POLYCHROME_GIT_REVISION", "unknown (not a git checkout)")


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "options":
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_same_experiment(run_dir: Path, config: TrainConfig) -> None:
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        return
    saved = _flatten(config_to_dict(load_config(saved_path)))
    new = _flatten(config_to_dict(config))
    changed = sorted(k for k in set(saved) | set(new) if saved.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise RunDirError(
            f"{run_dir} holds a run with a different config ({details}); use another --run-dir, or the same settings to resume"
        )


def class_weights_for(config: TrainConfig) -> torch.Tensor | None:
    """Zhang's rebalancing weights from the training set's prior at the input size (cached), if the loss needs them."""
    if config.loss.kind not in CLASSIFICATION_LOSSES:
        return None
    from polychrome.data import dataset_prior

    gamut = config.model.options.get("gamut", "zhang")
    prior = dataset_prior(
        config.data.train, config.data.size, gamut, config.loss.prior_sigma, workers=config.data.workers
    )
    return rebalancing_weights(prior, config.loss.mix)


def _record_session(run_dir: Path) -> None:
    path = run_dir / "run.json"
    record = json.loads(path.read_text()) if path.exists() else {"sessions": []}
    record["sessions"].append(
        {
            "git_revision": git_revision(),
            "command": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
            **_arithmetic(),
        }
    )
    path.write_text(json.dumps(record, indent=1))


def _arithmetic() -> dict:
    """What, besides the config, seed and code, decides a CPU training's weights bit for bit: the thread count
    (a reduction is summed in one part per thread), the CPU and the math libraries torch was built with."""
    import platform

    return {
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "mkldnn": torch.backends.mkldnn.is_available(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        import platform

        return platform.processor()


def _prepare(config: TrainConfig, run_dir: Path) -> None:
    """Check the run directory holds this experiment (or none), record the session, seed, set backend flags."""
    import lightning as L

    run_dir.mkdir(parents=True, exist_ok=True)
    _check_same_experiment(run_dir, config)
    save_config(config, run_dir / "config.yaml")
    _record_session(run_dir)
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    # Subnormal floats (tiny probabilities, Adam's second moments) made CPU steps 8x slower after ~1,300
    # steps of the CIFAR-10 run; flushing them to zero costs nothing measurable in accuracy.
    torch.set_flush_denormal(True)


def _task(config: TrainConfig, data):
    """The LightningModule of the config's task (a compiled network if asked)."""
    from polychrome.task import ClassificationTask, ColorizationTask

    task: ClassificationTask | ColorizationTask
    if config.task == "classify":
        data.setup()
        classes = data.train_set.classes
        if not classes:
            raise ValueError(
                f"task=classify needs labelled images, and {config.data.train} has no classes (class sub-folders)"
            )
        task = ClassificationTask(config_to_dict(config), len(classes))
    else:
        task = ColorizationTask.from_config(config, class_weights_for(config))
    if config.trainer.compile:
        # an OptimizedModule, which forwards attribute access (bins, predict_ab) to the network it wraps
        task.model = cast(Any, torch.compile(task.model))
    return task


def _callbacks(config: TrainConfig, checkpoints: Path, monitor: str) -> list:
    """Periodic and best checkpoints, the learning rate, and images per second (as
    ``train/device/samples_per_sec``, over the last ``log_every`` steps, at least 2)."""
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ThroughputMonitor

    t = config.trainer
    periodic = ModelCheckpoint(
        dirpath=checkpoints,
        filename="step{step:07d}",
        every_n_train_steps=t.checkpoint_every,
        save_top_k=t.keep_last,
        monitor="step",
        mode="max",
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )  # a copied run's last.ckpt is ours to replace, not to version
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename="best",
        monitor=monitor,
        mode="max",
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    throughput = ThroughputMonitor(batch_size_fn=lambda batch: len(batch.images), window_size=max(2, t.log_every))
    return [periodic, best, LearningRateMonitor(logging_interval="step"), throughput]


def _trainer(config: TrainConfig, run_dir: Path, callbacks: list):
    """The Lightning Trainer of the config, logging to CSV and TensorBoard in a new session folder."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    t = config.trainer
    on_gpu = t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and torch.cuda.is_available())
    session = len(list((run_dir / "logs").glob("version_*"))) if (run_dir / "logs").exists() else 0
    return L.Trainer(
        max_steps=t.max_steps,
        max_time=timedelta(minutes=t.max_minutes) if t.max_minutes else None,
        max_epochs=-1,
        val_check_interval=t.val_every,
        check_val_every_n_epoch=None,
        log_every_n_steps=t.log_every,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=cast(Any, t.precision or ("bf16-mixed" if on_gpu else "32-true")),
        callbacks=callbacks,
        logger=[
            CSVLogger(run_dir, name="logs", version=f"version_{session}"),
            TensorBoardLogger(run_dir, name="tb", version=f"version_{session}"),
        ],
        use_distributed_sampler=False,
        enable_progress_bar=t.progress,
        enable_model_summary=False,
        default_root_dir=run_dir,
        num_sanity_val_steps=0,
    )


def _fit(trainer, task, data, resume: Path | None) -> None:
    with warnings.catch_warnings():
        # Our sampler resumes mid-epoch exactly (data/loader.py), and a resumed run's folder is not empty.
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        # Resume without unpickling code, where Lightning lets us say so (Trainer.fit's weights_only, 2.6+).
        safe = {"weights_only": True} if "weights_only" in inspect.signature(trainer.fit).parameters else {}
        trainer.fit(task, datamodule=data, ckpt_path=resume, **safe)


def train(config: TrainConfig, run_dir: str | Path, callbacks: Sequence = ()):
    """Train (or resume) the run in ``run_dir``; returns the Lightning Trainer when it has finished.

    ``callbacks`` are extra Lightning callbacks (progress reports, probes in tests). With ``trainer.threads``
    set, torch uses that many CPU threads while it trains (and as many as before afterwards)."""
    run_dir = Path(run_dir)
    previous = torch.get_num_threads()
    if config.trainer.threads is not None:  # before _prepare records the session's threads
        torch.set_num_threads(config.trainer.threads)
    try:
        return _train(config, run_dir, callbacks)
    finally:
        torch.set_num_threads(previous)


def _train(config: TrainConfig, run_dir: Path, callbacks: Sequence):
    from polychrome.data.module import ColorizationData

    _prepare(config, run_dir)
    data = ColorizationData(config.data, config.trainer.max_steps)
    task = _task(config, data)
    checkpoints = run_dir / "checkpoints"
    trainer = _trainer(config, run_dir, [*_callbacks(config, checkpoints, task.monitor), *callbacks])
    last = checkpoints / "last.ckpt"
    _fit(trainer, task, data, _newest_checkpoint([last, *run_dir.glob("hpc_ckpt_*.ckpt")]))
    if trainer.global_step > saved_step(last):  # the final steps fell between periodic checkpoints
        trainer.save_checkpoint(last)
    if config.task == "classify" and trainer.is_global_zero:
        export_classifier(
            checkpoints / ("best.ckpt" if (checkpoints / "best.ckpt").exists() else "last.ckpt"),
            run_dir,
            data.train_set.classes,
        )
    return trainer


def saved_step(path: Path) -> int:
    """The global step a checkpoint was saved at (-1 when there is none)."""
    if not path.exists():
        return -1
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def _newest_checkpoint(paths: list[Path]) -> Path | None:
    """The checkpoint with the most steps: last.ckpt, or one Lightning saved on a SLURM time-limit signal."""
    steps = {path: saved_step(path) for path in paths}
    newest = max(steps, key=steps.__getitem__, default=None)
    return newest if newest is not None and steps[newest] >= 0 else None


def read_metrics(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every logged metric of a run as (step, value) pairs, across its sessions (logs/version_*/metrics.csv)."""
    import csv

    series: dict[str, dict[int, float]] = {}
    for path in sorted(
        Path(run_dir).glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])
    ):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                for name, value in row.items():
                    if name not in ("step", "epoch") and value not in ("", None):
                        series.setdefault(name, {})[int(row["step"])] = float(value)
    return {name: sorted(points.items()) for name, points in series.items()}
