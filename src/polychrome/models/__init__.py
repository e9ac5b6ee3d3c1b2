"""Models: a registry of named configs (``create_model(name, **overrides)``), as timm has, and the card
every loaded model carries (``build_model``, ``load_weights`` and ``load_official`` return ``LoadedModel``)."""

from polychrome.models import baselines, fusion, official, unet, zhang  # noqa: F401  (registers the models)
from polychrome.models.base import Colorizer, decode_output, upsample_ab
from polychrome.models.card import DEFAULT_INPUT_SIZE, LoadedModel, ModelCard, as_loaded
from polychrome.models.factory import load_model
from polychrome.models.fusion import BackboneError
from polychrome.models.official import OfficialWeightsError, load_official
from polychrome.models.registry import (
    build_model,
    count_parameters,
    create_model,
    initialise_by_name,
    list_models,
    model_entry,
)
from polychrome.models.weights import WeightsError, bundled_weights, load_weights, save_weights

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "BackboneError",
    "Colorizer",
    "LoadedModel",
    "ModelCard",
    "OfficialWeightsError",
    "WeightsError",
    "as_loaded",
    "build_model",
    "bundled_weights",
    "count_parameters",
    "create_model",
    "decode_output",
    "initialise_by_name",
    "list_models",
    "load_model",
    "load_official",
    "load_weights",
    "model_entry",
    "save_weights",
    "upsample_ab",
]
