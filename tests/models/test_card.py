"""Every way of loading a model gives the network with one frozen card; nothing is attached to the network."""

import dataclasses

import pytest
import torch

from polychrome.color import DEFAULT_TEMPERATURE
from polychrome.models import DEFAULT_INPUT_SIZE, ModelCard, build_model, create_model, load_weights, save_weights
from polychrome.pipeline import load_model

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
