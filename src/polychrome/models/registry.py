"""A registry of named model configs, the way timm does it: ``create_model(name, **overrides)``.

Each registered name maps to a builder function taking keyword options; a config is the builder's
defaults plus the registered options plus the caller's overrides. An unknown name or option fails with
the valid choices listed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., nn.Module]
    config_class: type | None  # the dataclass whose fields are the valid options, when there is one
    options: dict = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, Entry] = {}


def register(name: str, builder: Callable[..., nn.Module], config_class: type | None = None, description: str = "", **options) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = Entry(name, builder, config_class, options, description)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; ``overrides`` replace fields of its config (None means 'leave as is')."""
    entry = model_entry(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if entry.config_class is not None:
        valid = {f.name for f in dataclasses.fields(entry.config_class)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(f"model {name!r} has no option {', '.join(unknown)}; valid options: {', '.join(sorted(valid))}")
    model = entry.builder(**(entry.options | overrides))
    model.registry_name = name
    model.registry_options = entry.options | overrides
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
