"""A model card: the facts about a loaded model in one frozen record, the way timm's ``pretrained_cfg`` is.

Every loader (a registered name, a run directory or checkpoint, a weights file, the official weights, an
ONNX file) returns a ``LoadedModel``: the network and its ``ModelCard``. Whatever needs a fact about the
model (the size it sees, its decoding temperature, its head) reads the card; nothing is attached to the
network at run time.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from polychrome.color import DEFAULT_TEMPERATURE
from polychrome.levin import PRIOR_WEIGHT, RESIDUAL_DECAY, RESIDUAL_DECAY_FALLOFF
from polychrome.models.base import Colorizer

# Zhang et al. 2016 train and test at 256 x 256, and so were both official networks; a model that was
# never trained at a size of its own (a baseline, a freshly built network) is run at this one.
DEFAULT_INPUT_SIZE = 256
# What follows a hint-taking network's prediction: "none", or "levin": the residual at the hints (hint minus
# prediction) spread by Levin et al.'s optimisation at the network's resolution and added, so every hint is kept
# exactly and edges are followed where the network's small input blurs them (polychrome.levin.propagate_residual;
# chosen by measurement for the bundled guided model, docs/guided.md).
HINT_PROPAGATIONS = ("none", "levin")


@dataclass(frozen=True)
class ModelCard:
    """What polychrome knows about a model. ``options`` are ``create_model``'s (with the registered ones),
    so ``create_model(name, **options)`` rebuilds the network."""

    name: str  # the registered architecture, e.g. "eccv16"; for a bare network its class name
    head: str  # "classification" (logits over the gamut's bins) or "regression" (ab)
    gamut: str  # the bins a classification head's logits are over ("zhang" or "srgb")
    input_size: int = DEFAULT_INPUT_SIZE  # the side of the square L the network sees
    temperature: float = DEFAULT_TEMPERATURE  # the annealed-mean temperature it decodes at unless told
    options: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ("L",)  # what it takes, in order: "L", then "ab_hints", "hint_mask", "global_hints"
    full_resolution: bool = False  # sees each photo at its own size (Levin), not resized to input_size
    hint_propagation: str = "none"  # what corrects its prediction towards local hints (HINT_PROPAGATIONS)
    # "levin"'s constants (propagate_residual's decay and prior_weight): how strongly the colours return to the
    # network's away from the hints, and how much of the network's colour is kept near them.
    hint_decay: float = RESIDUAL_DECAY
    hint_prior_weight: float = PRIOR_WEIGHT
    hint_decay_falloff: float = RESIDUAL_DECAY_FALLOFF  # the decay divided by (hinted regions) ** this
    weights: str = ""  # the file the weights came from ("" when built without)
    weights_sha256: str = ""

    def __post_init__(self):
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        if self.input_size < 1:
            raise ValueError(f"input_size must be positive, got {self.input_size}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.hint_propagation not in HINT_PROPAGATIONS:
            raise ValueError(
                f"hint_propagation must be one of {', '.join(HINT_PROPAGATIONS)}, got {self.hint_propagation!r}"
            )
        if not self.hint_decay >= 0:  # NaN too
            raise ValueError(
                f"hint_decay must be >= 0 (0: no pull back to the network's colours), got {self.hint_decay}"
            )
        if not self.hint_decay_falloff >= 0:
            raise ValueError(
                f"hint_decay_falloff must be >= 0 (0: the same decay at any number of hints), got {self.hint_decay_falloff}"
            )
        if not 0 <= self.hint_prior_weight <= 1:
            raise ValueError(
                f"hint_prior_weight must be in [0, 1] (1: the network's colours), got {self.hint_prior_weight}"
            )
        if self.hint_propagation != "none" and "ab_hints" not in self.inputs:
            raise ValueError(f"hint_propagation {self.hint_propagation!r} needs a model that takes local hints")

    def replace(self, **changes) -> ModelCard:
        return dataclasses.replace(self, **changes)


class LoadedModel(nn.Module):
    """A network and its card. Calling it runs the network (L (N, 1, S, S) in [0, 100] -> logits
    (N, Q, h, w) or ab (N, 2, h, w)); ``.to`` and ``.eval`` move and switch the network as for any module.
    ``network`` is a ``Colorizer``, or any module with ``bins`` (the ONNX backend's ``OnnxNetwork``)."""

    network: nn.Module

    def __init__(self, network: nn.Module, card: ModelCard):
        super().__init__()
        self.network = network
        self.card = card

    def forward(self, lightness: Tensor, *hints: Tensor | None) -> Tensor:
        """The network on L and, for a model whose card lists them, its hint inputs (see ``Colorizer``)."""
        return self.network(lightness, *hints)

    @property
    def takes_hints(self) -> bool:
        """Whether the model takes local colour hints (its card lists ``ab_hints``)."""
        return "ab_hints" in self.card.inputs

    @property
    def bins(self) -> Tensor:
        """The (Q, 2) ab bin centres a classification head's logits are over (empty for regression)."""
        bins = self.network.bins
        assert isinstance(bins, Tensor)
        return bins

    def with_card(self, **changes) -> LoadedModel:
        """The same network under a card with ``changes`` (e.g. the input size a file records)."""
        return LoadedModel(self.network, self.card.replace(**changes))


def card_of_network(network: Colorizer) -> ModelCard:
    """The card of a network built without a loader (a test's, one being trained): its head and gamut,
    the default input size and temperature, no weights file."""
    return ModelCard(
        type(network).__name__,
        network.head,
        network.gamut,
        inputs=network.inputs,
        full_resolution=network.full_resolution,
    )


def as_loaded(model: LoadedModel | Colorizer) -> LoadedModel:
    """``model`` with its card: a LoadedModel as it is, a bare ``Colorizer`` with ``card_of_network``."""
    return model if isinstance(model, LoadedModel) else LoadedModel(model, card_of_network(model))


def sha256_of(path: str | Path) -> str:
    """The file's SHA-256, for the card's ``weights_sha256`` (which file, exactly, made these colours);
    read in 1 MiB blocks (``hashlib.file_digest`` needs Python 3.11)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
