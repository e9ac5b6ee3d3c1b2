"""Rebuilding a trained model from its checkpoint alone (the config travels inside it), loaded safely."""

from __future__ import annotations

from pathlib import Path

import torch

from polychrome.models import Colorizer, LoadedModel, WeightsError, create_model
from polychrome.models.card import card_of_network, sha256_of
from polychrome.models.registry import resolve_options
from polychrome.models.weights import load_state_strict


class CheckpointError(WeightsError):
    """A file or run directory that does not hold a polychrome checkpoint; the message says why."""


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or the best (else last) checkpoint of a run directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise CheckpointError(
            f"{path} has no checkpoints/best.ckpt or checkpoints/last.ckpt: is it a polychrome run directory?"
        )
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Colorizer, dict]:
    """The model of a polychrome checkpoint (eval mode) and its resolved config (a dict)."""
    path = checkpoint_path(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, foreign or tampered files all end here
        raise CheckpointError(f"{path} is not a readable checkpoint ({str(error)[:200]})") from None
    config = (checkpoint.get("hyper_parameters") or {}).get("config") if isinstance(checkpoint, dict) else None
    if not config or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a polychrome training checkpoint (no config or state_dict in it)")
    model = create_model(config["model"]["name"], **config["model"].get("options", {}))
    state = {
        k.removeprefix("model.").replace("_orig_mod.", ""): v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith("model.")
    }
    load_state_strict(model, state, path, CheckpointError)
    return model.eval(), config


def load_checkpoint_model(path: str | Path) -> tuple[LoadedModel, dict]:
    """``load_checkpoint``'s network with its card: the run's model name and options, the size it was
    trained at, the checkpoint file and its hash. The temperature stays the default (the run's own
    becomes the model's when it is exported as a weights file)."""
    network, config = load_checkpoint(path)
    source, name = checkpoint_path(path), config["model"]["name"]
    card = card_of_network(network).replace(
        name=name,
        input_size=config["data"]["size"],
        options=resolve_options(name, config["model"].get("options", {})),
        weights=str(source),
        weights_sha256=sha256_of(source),
    )
    return LoadedModel(network, card), config


def export_weights(
    path: str | Path,
    out: str | Path,
    temperature: float | None = None,
    half: bool = False,
    hint_propagation: str | None = None,
) -> Path:
    """A checkpoint (or a run directory's best) as a standalone weights file: safetensors plus the
    model's name, options and input size, the decoding temperature, the hint propagation that follows it
    (``ModelCard.hint_propagation``; none unless given), and the run's full config and training commands,
    so the file alone says how it was made. ``half``: float16 weights (save_weights)."""
    import json

    import yaml

    from polychrome.models import save_weights

    source = checkpoint_path(path)
    model, config = load_checkpoint_model(source)
    run_record = source.parent.parent / "run.json"
    sessions = json.loads(run_record.read_text())["sessions"] if run_record.is_file() else []
    return save_weights(
        model,
        out,
        input_size=config["data"]["size"],
        temperature=config["temperature"] if temperature is None else temperature,
        half=half,
        hint_propagation=hint_propagation,
        config=yaml.safe_dump(config, sort_keys=False),
        commands=json.dumps([" ".join(s["command"]) for s in sessions]),
        git_revisions=json.dumps(sorted({s["git_revision"] for s in sessions})),
        checkpoint=source.name,
    )
