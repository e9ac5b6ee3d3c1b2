"""A registry of named model configs, the way timm does it: ``create_model(name, **overrides)``.

Each registered name maps to a builder function taking keyword options; a config is the builder's
defaults plus the registered options plus the caller's overrides. An unknown name or option fails with
the valid choices listed. ``build_model`` gives the network with its card (models/card.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from polychrome.data.loader import mix_seed
from polychrome.models.base import Colorizer
from polychrome.models.card import LoadedModel, card_of_network


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Colorizer]
    config_class: type | None  # the dataclass whose fields are the valid options, when there is one
    options: dict = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, Entry] = {}


def register(
    name: str, builder: Callable[..., Colorizer], config_class: type | None = None, description: str = "", **options
) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = Entry(name, builder, config_class, options, description)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, **overrides) -> Colorizer:
    """Build a registered model; ``overrides`` replace fields of its config (None means 'leave as is')."""
    return model_entry(name).builder(**resolve_options(name, overrides))


def build_model(name: str, **overrides) -> LoadedModel:
    """``create_model``'s network with its card: the registered name, the options that rebuild it, its
    head and gamut; the default input size and temperature until a loader sets what a file records."""
    network = create_model(name, **overrides)
    return LoadedModel(network, card_of_network(network).replace(name=name, options=resolve_options(name, overrides)))


def resolve_options(name: str, overrides: dict) -> dict:
    """The options ``name`` is built with: the registered ones, then ``overrides`` (None: leave as is);
    an option the model does not have fails with the valid ones listed."""
    entry = model_entry(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    valid = _valid_options(entry)
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"model {name!r} has no option {', '.join(unknown)}; valid options: {', '.join(sorted(valid)) or 'none'}"
        )
    return entry.options | overrides


def _valid_options(entry: Entry) -> set[str]:
    """The config dataclass's fields, else the builder's own keyword parameters."""
    if entry.config_class is not None:
        return {f.name for f in dataclasses.fields(entry.config_class)}
    return set(inspect.signature(entry.builder).parameters)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def initialise_by_name(model: nn.Module, seed: int) -> nn.Module:
    """Draw each trainable layer's initial weights again, from a generator seeded by ``seed`` and the layer's
    name, so that two architectures trained at one seed start from the same weights in every layer they share
    by name and shape (common random numbers: a comparison of the two then carries less of the initialisation's
    luck; docs/studies.md). Frozen layers (a fusion model's pretrained classifier) keep theirs; a trainable
    layer that cannot be re-drawn (parameters of its own but no ``reset_parameters``) is refused, since its
    weights would still depend on everything built before it."""
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not own or not all(p.requires_grad for p in own):
            continue
        if not hasattr(module, "reset_parameters"):
            raise ValueError(
                f"{name or type(module).__name__} has parameters of its own but no reset_parameters(), so its initial "
                "weights cannot be drawn by name; give it one, or train without trainer.common_init"
            )
        number = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=7).digest(), "little")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed(seed, number))
            module.reset_parameters()
    return model
