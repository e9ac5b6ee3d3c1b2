"""Run configuration: one dataclass tree, read from YAML merged over defaults, then ``--set a.b=v``.

Unknown keys fail and name the valid ones. The resolved config is saved in the run directory and in
every checkpoint, so a run can be rebuilt from either.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polychrome.color import DEFAULT_TEMPERATURE
from polychrome.hints import GLOBAL_HINT_PROBABILITY, PLACEMENTS
from polychrome.losses import LossConfig


@dataclass
class DataConfig:
    train: str | list[str] = (
        "cifar10@train"  # a dataset spec (see polychrome.data), or a list: their mix (repeat one to weight it)
    )
    val: str | list[str] | None = None  # separate validation spec(s); None = split val_fraction off train
    val_fraction: float = 0.05
    val_limit: int | None = 1000  # at most this many validation images per validation run
    limit: int | None = None  # use only the first N training images (tiny runs, tests)
    size: int = 32  # the network's input side
    cache_size: int | None = None  # decode once to this side (>= size; random crops come from it); None = size
    cache: bool = True  # read from the decoded-image cache instead of decoding every epoch
    flip: bool = True
    batch_size: int = 32
    workers: int = 2
    seed: int = 0  # data order, augmentation and the train/val split


@dataclass
class OptimConfig:
    # Zhang et al. 2016: Adam, lr 3e-5, betas 0.9 / 0.99, weight decay 1e-3.
    lr: float = 3e-5
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 1e-3
    schedule: str = "constant"  # "constant", "cosine" (to lr * final_lr_fraction at max_steps) or "step"
    warmup_steps: int = 0
    final_lr_fraction: float = 0.01
    # schedule "step": from each milestone step on, lr * its factor (Zhang's: 3e-5, x1/3 at 200k, x1/10 at 375k)
    milestones: list[int] = field(default_factory=list)
    milestone_factors: list[float] = field(default_factory=list)


@dataclass
class TrainerConfig:
    max_steps: int = 1000  # also the length of the learning-rate schedule
    max_minutes: float | None = None  # a wall-clock stop besides max_steps (a lent machine's budget)
    val_every: int = 250  # validate every N steps
    checkpoint_every: int = 100  # a kill -9 loses at most this many steps
    keep_last: int = 2  # periodic checkpoints kept, besides last.ckpt and the best
    log_every: int = 10
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"  # "ddp" for several GPUs / nodes (Lightning's)
    precision: str | None = None  # None: bf16-mixed on GPU, 32 on CPU
    compile: bool = False
    channels_last: bool = False
    seed: int = 0
    # torch's intra-op CPU threads while training (None: torch's default, one per core, or OMP_NUM_THREADS). The
    # weights depend on it bit for bit: a CPU sums a reduction in as many parts as it has threads (docs/training.md)
    threads: int | None = None
    # initial weights drawn per layer from (seed, the layer's name), so arms of a study that share a layer start
    # it alike (common random numbers; models.initialise_by_name). Data order and augmentation already depend on
    # the seed alone (data/loader.py)
    common_init: bool = False
    progress: bool = True


@dataclass
class ModelConfig:
    name: str = "eccv16"  # a registered model; for task=classify, a timm architecture (e.g. resnet18)
    options: dict[str, Any] = field(default_factory=dict)  # overrides of the registered config


@dataclass
class HintConfig:
    """Simulated colour hints for a model that takes them (Zhang et al. 2017; polychrome.hints): training
    draws them per image from the truth, seeded by the step, so a resumed run sees the same hints."""

    placement: str = "gaussian"  # where points fall: "gaussian" around the centre or "uniform"
    global_probability: float = GLOBAL_HINT_PROBABILITY  # how often a sample also gets the truth's global hint
    max_points: int | None = None  # cap on the geometric number of points (None: uncapped)
    val_hints: int = 10  # validation gives every image this many simulated hints (seeded per image)

    def __post_init__(self):
        if self.placement not in PLACEMENTS:
            raise ValueError(f"hints.placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")


TASKS = ("colorize", "classify")


@dataclass
class TrainConfig:
    task: str = "colorize"  # or "classify": a timm classifier on the colour images' labels (a fusion backbone)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    temperature: float = DEFAULT_TEMPERATURE  # annealed-mean decoding for validation metrics
    hints: HintConfig = field(default_factory=HintConfig)  # used when the model takes hints

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")


def check_keys(cls: type, values: dict, where: str = "", source: str = "") -> None:
    """Fail on a key of ``values`` that the dataclass ``cls`` has no field for, naming it (``where`` is its
    dotted section, ``source`` the file) and the valid keys: run configs and study files share this, so a
    typo reads the same in both."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"unknown config key {', '.join(f'{where}{k}' for k in unknown)}{f' in {source}' if source else ''}; "
            f"valid keys in {where or 'the top level'}: {', '.join(sorted(names))}"
        )


def _build(cls: type, values: dict, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where or 'config'} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    check_keys(cls, values, where)
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}{name}")
    return cls(**kwargs)


def _coerce(value, hint, key: str):
    """Check a value against its field's type; YAML reads 1e-3 as a string, so numbers in strings are read too."""
    options = [
        t
        for t in (typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,))
        if t is not type(None)
    ]
    if value is None:
        if len(options) < len(typing.get_args(hint)) or hint is Any:
            return None
        raise ValueError(f"{key} cannot be null")
    for option in options:
        base = typing.get_origin(option) or option
        if base is Any:
            return value
        if base is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
        if isinstance(value, base) and not (base in (int, float) and isinstance(value, bool)):
            return value
    for kind in (int, float):
        if kind in options and not isinstance(value, bool):
            try:
                number = kind(value)
            except (TypeError, ValueError):
                continue
            if kind is float or float(value) == number:
                return number
    names = " or ".join(getattr(t, "__name__", str(t)) for t in options)
    raise ValueError(f"{key} must be {names}, got {value!r}")


def _model_section(values: dict) -> dict:
    """YAML writes ``model: {name: eccv16, width: 0.25}``; everything but the name is an option."""
    if "model" not in values:
        return values
    model = dict(values["model"])
    section = {"options": dict(model.pop("options", {}))}
    if "name" in model:
        section["name"] = model.pop("name")
    section["options"] |= model
    return values | {"model": section}


def _set(tree: dict, assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ValueError(f"--set takes key=value (e.g. trainer.max_steps=500), got {assignment!r}")
    value = yaml.safe_load(raw) if raw else None
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def load_config(path: str | Path | None = None, sets: Sequence[str] = (), base: dict | None = None) -> TrainConfig:
    """Defaults, then ``base`` (a saved config), then the YAML file, then each ``key=value``."""
    tree = config_to_dict(TrainConfig())
    if base:
        tree = _merge(tree, _model_section(base))
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        tree = _merge(tree, _model_section(loaded))
    overrides: dict = {}
    for assignment in sets:
        _set(overrides, assignment)
    tree = _merge(tree, _model_section(overrides))
    return _build(TrainConfig, tree, "")


def config_to_dict(config) -> dict:
    """A plain dict (tuples as lists) for YAML, JSON and checkpoints."""

    def plain(value):
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
