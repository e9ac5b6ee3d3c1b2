"""Trained weights as one safetensors file: the tensors, and in its metadata what rebuilds the model
(registered name, options, input size, decoding temperature, how it was trained).

Nothing in such a file is executed (no pickle), and nothing is fetched: the bundled weights ship inside
the package (``polychrome/weights/``) and any other file is given by path.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor, nn

from polychrome.files import atomic_path
from polychrome.models.card import LoadedModel, sha256_of
from polychrome.models.registry import build_model

BUNDLED = {"default": "default.safetensors", "guided": "guided.safetensors"}  # tag -> file in polychrome/weights/
# The hint propagation's constants of a file that does not record them: those every file was made and measured with
# before the card carried them (issue 32), so an old file keeps its colours.
LEGACY_HINT_DECAY = 0.0
LEGACY_HINT_PRIOR_WEIGHT = 0.375


class WeightsError(Exception):
    """A weights file that is missing, unreadable, or made for another network; the message says which."""


def load_state_strict(
    model: nn.Module, state: dict[str, Tensor], source: Path | str, error: type[Exception] = WeightsError
) -> None:
    """``model.load_state_dict(state)``, failing in one line that names the missing, unexpected and
    wrongly shaped tensors (a file for another architecture), not a multi-line stack trace."""
    # BatchNorm's step counters are not learned and some files lack them: start them at zero.
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.zeros_like(value))
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            filter(
                None,
                [
                    f"missing {', '.join(missing[:5])}" if missing else "",
                    f"unexpected {', '.join(unexpected[:5])}" if unexpected else "",
                    f"wrong shapes {', '.join(wrong[:5])}" if wrong else "",
                ],
            )
        )
        raise error(f"{source} does not fit the network {type(model).__name__}: {details}")
    model.load_state_dict(state, strict=True)


def bundled_weights(tag: str) -> Path:
    """The path of a bundled weights file (``default``)."""
    if tag not in BUNDLED:
        raise WeightsError(f"no bundled weights {tag!r}; bundled: {', '.join(BUNDLED)}")
    path = Path(str(resources.files("polychrome") / "weights" / BUNDLED[tag]))
    if not path.is_file():
        raise WeightsError(f"the bundled weights {path} are missing from this installation; reinstall polychrome")
    return path


def save_weights(
    model: LoadedModel,
    path: str | Path,
    input_size: int | None = None,
    temperature: float | None = None,
    half: bool = False,
    hint_propagation: str | None = None,
    **about: str,
) -> Path:
    """Write ``model`` (from ``build_model`` or a loader) with its card: registered name, options, input
    size, temperature and hint propagation (``input_size``/``temperature``/``hint_propagation`` given here
    replace the card's); ``about`` adds text fields (the training config, command, revision, measured
    results). Written atomically. ``half``
    stores the learned weights as float16, half the file (a wider network within the package's size
    budget); BatchNorm's statistics stay float32, and loading casts everything back to float32."""
    from safetensors.torch import save_file

    if not isinstance(model, LoadedModel):
        raise TypeError(
            f"save_weights needs a model with its card (from build_model or a loader), got a bare "
            f"{type(model).__name__}: build it with polychrome.models.build_model(name, **options)"
        )
    path, card = Path(path), model.card
    if hint_propagation is not None:
        card = card.replace(hint_propagation=hint_propagation)  # checked against the model's inputs
    metadata = {
        "format": "polychrome-weights-1",
        "model": card.name,
        "options": json.dumps(dict(card.options)),
        "input_size": str(input_size or card.input_size),
        "temperature": str(card.temperature if temperature is None else temperature),
        "hint_propagation": card.hint_propagation,
        "hint_decay": repr(card.hint_decay),
        "hint_prior_weight": repr(card.hint_prior_weight),
        "hint_decay_falloff": repr(card.hint_decay_falloff),
    } | about
    network = model.network
    learned = {name for name, _ in network.named_parameters()}
    state = {
        k: (v.half() if half and k in learned else v).detach().contiguous().cpu()
        for k, v in network.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    with atomic_path(path) as temporary:
        save_file(state, str(temporary), metadata=metadata)
        temporary.chmod(0o644)  # safetensors writes 0600; a weights file is made to be shared
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
    except Exception as error:  # not a safetensors file, or a damaged one
        raise WeightsError(f"{path} is not a readable safetensors file ({str(error)[:120]})") from None
    if metadata.get("format") != "polychrome-weights-1":
        raise WeightsError(
            f"{path} is a safetensors file without polychrome's metadata (model name, options); "
            "export one with `polychrome export-weights RUN_DIR OUT.safetensors`"
        )
    return metadata


def load_weights(path: str | Path) -> LoadedModel:
    """The model of a weights file, in eval mode, its card holding the file's input size, temperature, hint
    propagation (files written before it existed have none) and its constants (before they were recorded:
    ``LEGACY_HINT_DECAY`` and ``LEGACY_HINT_PRIOR_WEIGHT``) and hash."""
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    metadata = read_metadata(path)
    try:
        model = build_model(metadata["model"], **json.loads(metadata["options"]))
    except ValueError as error:
        raise WeightsError(f"{path} names a model this polychrome cannot build: {error}") from None
    load_state_strict(model.network, load_file(str(path)), path)
    card = model.card.replace(
        input_size=int(metadata["input_size"]),
        temperature=float(metadata["temperature"]),
        hint_propagation=metadata.get("hint_propagation", "none"),
        hint_decay=float(metadata.get("hint_decay", LEGACY_HINT_DECAY)),
        hint_prior_weight=float(metadata.get("hint_prior_weight", LEGACY_HINT_PRIOR_WEIGHT)),
        hint_decay_falloff=float(metadata.get("hint_decay_falloff", 0.0)),
        weights=str(path),
        weights_sha256=sha256_of(path),
    )
    return LoadedModel(model.network, card).eval()
