"""Models: a registry of named configs (``create_model(name, **overrides)``), as timm has."""

from polychrome.models import baselines, fusion, official, zhang  # noqa: F401  (registers the models)
from polychrome.models.base import Colorizer, upsample_ab
from polychrome.models.fusion import BackboneError
from polychrome.models.official import OfficialWeightsError, load_official
from polychrome.models.registry import count_parameters, create_model, list_models, model_entry
from polychrome.models.weights import WeightsError, bundled_weights, load_weights, save_weights

__all__ = [
    "BackboneError",
    "Colorizer",
    "OfficialWeightsError",
    "count_parameters",
    "create_model",
    "list_models",
    "load_official",
    "model_entry",
    "upsample_ab",
    "WeightsError",
    "bundled_weights",
    "load_weights",
    "save_weights",
]
