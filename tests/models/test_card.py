"""Every way of loading a model gives the network with one frozen card; nothing is attached to the network."""

import dataclasses

import pytest
import torch

from polychrome.color import DEFAULT_TEMPERATURE
from polychrome.models import (
    DEFAULT_INPUT_SIZE,
    ModelCard,
    build_model,
    create_model,
    load_model,
    load_weights,
    save_weights,
)

FACTS = ("input_size", "temperature", "registry_name", "registry_options", "card")


def assert_bare(network):
    """The facts live on the card, never on the network."""
    assert not [fact for fact in FACTS if fact in vars(network)]


def test_an_option_a_builder_does_not_take_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"model 'gray' has no option width; valid options: none"):
        create_model("gray", width=1)
    with pytest.raises(ValueError, match=r"model 'mean' has no option width; valid options: size"):
        create_model("mean", width=1)
    with pytest.raises(ValueError, match=r"valid options: .*dilation"):
        create_model("eccv16", widht=0.5)


def test_a_registered_model_has_the_default_card():
    model = load_model("gray")
    assert model.card == ModelCard("gray", "regression", "zhang", DEFAULT_INPUT_SIZE, DEFAULT_TEMPERATURE)
    assert model.card.inputs == ("L",) and model.card.weights == ""
    built = build_model("eccv16_regress", width=0.125)
    assert dict(built.card.options) == {"head": "regression", "width": 0.125} and built.card.head == "regression"
    assert_bare(built.network)


def test_the_card_is_frozen():
    card = build_model("eccv16", width=0.125).card
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.input_size = 64
    with pytest.raises(TypeError):
        card.options["width"] = 1.0
    with pytest.raises(ValueError, match="input_size must be positive, got 0"):
        card.replace(input_size=0)


def test_a_weights_file_and_a_run_directory_give_their_facts(tmp_path):
    torch.manual_seed(0)
    built = build_model("eccv16", width=0.125)
    path = save_weights(built, tmp_path / "tiny.safetensors", input_size=16, temperature=0.3)
    loaded = load_weights(path)
    assert (loaded.card.name, dict(loaded.card.options)) == ("eccv16", {"width": 0.125})
    assert (loaded.card.input_size, loaded.card.temperature, loaded.card.weights) == (16, 0.3, str(path))
    assert len(loaded.card.weights_sha256) == 64
    assert_bare(loaded.network)

    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"
    checkpoint.parent.mkdir(parents=True)
    config = {"model": {"name": "eccv16", "options": {"width": 0.125}}, "data": {"size": 24}}
    state = {f"model.{k}": v for k, v in built.network.state_dict().items()}
    torch.save({"hyper_parameters": {"config": config}, "state_dict": state}, checkpoint)
    run = load_model(str(tmp_path / "run"))
    assert (run.card.name, run.card.input_size, run.card.temperature) == ("eccv16", 24, DEFAULT_TEMPERATURE)
    assert run.card.weights == str(checkpoint)
    assert_bare(run.network)


def test_save_weights_needs_the_card():
    with pytest.raises(TypeError, match="build_model"):
        save_weights(create_model("gray"), "unused.safetensors", input_size=16)


def test_hint_propagation_is_a_fact_of_the_card_kept_by_weights_files_and_checked(tmp_path):
    guided = build_model("unet_guided", channels=(4, 8))
    path = save_weights(guided, tmp_path / "guided.safetensors", input_size=16, hint_propagation="levin")
    assert load_weights(path).card.hint_propagation == "levin"
    assert load_weights(save_weights(guided, tmp_path / "plain.safetensors")).card.hint_propagation == "none"
    with pytest.raises(ValueError, match="hint_propagation must be one of none, levin, got 'poisson'"):
        guided.card.replace(hint_propagation="poisson")
    with pytest.raises(ValueError, match="'levin' needs a model that takes local hints"):
        save_weights(build_model("eccv16", width=0.125), tmp_path / "no.safetensors", hint_propagation="levin")
    assert not (tmp_path / "no.safetensors").exists()


def test_a_weights_file_written_before_hint_propagation_existed_loads_without_it(tmp_path):
    from safetensors.torch import load_file, save_file

    from polychrome.models.weights import read_metadata

    path = save_weights(
        build_model("unet_guided", channels=(4, 8)), tmp_path / "old.safetensors", hint_propagation="levin"
    )
    metadata = {k: v for k, v in read_metadata(path).items() if k != "hint_propagation"}
    save_file(load_file(str(path)), str(path), metadata=metadata)
    assert load_weights(path).card.hint_propagation == "none"


def test_export_weights_records_the_hint_propagation_it_is_told(tmp_path, capsys):
    from polychrome.cli import main

    built = build_model("unet_guided", channels=(4, 8))
    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"
    checkpoint.parent.mkdir(parents=True)
    config = {
        "model": {"name": "unet_guided", "options": {"channels": [4, 8]}},
        "data": {"size": 16},
        "temperature": 0.38,
    }
    state = {f"model.{k}": v for k, v in built.network.state_dict().items()}
    torch.save({"hyper_parameters": {"config": config}, "state_dict": state}, checkpoint)
    out = tmp_path / "guided.safetensors"
    assert main(["export-weights", str(tmp_path / "run"), str(out), "--hint-propagation", "levin"]) == 0
    assert load_weights(out).card.hint_propagation == "levin"
    assert main(["export-weights", str(tmp_path / "run"), str(out)]) == 0
    assert load_weights(out).card.hint_propagation == "none"


def test_the_hint_propagations_constants_are_kept_by_weights_files_and_old_files_keep_theirs(tmp_path):
    from safetensors.torch import load_file, save_file

    from polychrome.levin import PRIOR_WEIGHT, RESIDUAL_DECAY
    from polychrome.models.weights import LEGACY_HINT_DECAY, LEGACY_HINT_PRIOR_WEIGHT, read_metadata

    guided = build_model("unet_guided", channels=(4, 8)).with_card(hint_propagation="levin")
    assert (guided.card.hint_decay, guided.card.hint_prior_weight) == (RESIDUAL_DECAY, PRIOR_WEIGHT)
    constants = {"hint_decay": 0.002, "hint_prior_weight": 0.6, "hint_decay_falloff": 1.5}
    path = save_weights(guided.with_card(**constants), tmp_path / "g.safetensors")
    assert {name: getattr(load_weights(path).card, name) for name in constants} == constants
    metadata = {k: v for k, v in read_metadata(path).items() if k not in constants}
    save_file(load_file(str(path)), str(path), metadata=metadata)  # a file from before the card carried them
    card = load_weights(path).card
    assert (card.hint_decay, card.hint_prior_weight) == (LEGACY_HINT_DECAY, LEGACY_HINT_PRIOR_WEIGHT) == (0.0, 0.375)
    assert card.hint_decay_falloff == 0.0  # the same decay at any number of hints, as before the falloff
    with pytest.raises(ValueError, match=r"hint_decay_falloff must be >= 0 .* got -1"):
        guided.card.replace(hint_decay_falloff=-1)
    with pytest.raises(ValueError, match=r"hint_decay must be >= 0 .* got -0.1"):
        guided.card.replace(hint_decay=-0.1)
    with pytest.raises(ValueError, match=r"hint_prior_weight must be in \[0, 1\] .* got 1.5"):
        guided.card.replace(hint_prior_weight=1.5)
