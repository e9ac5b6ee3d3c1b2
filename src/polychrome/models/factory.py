"""``load_model``: any model by the name a person types, in eval mode, with its card (timm keeps the same
job in ``_factory.py``). The registry builds architectures; this module also finds weights, checkpoints,
released official weights and the baselines that are fitted from data."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from polychrome.data import SkipUnreadable, collate_images, eval_transform, length, open_dataset
from polychrome.models.baselines import FittedBaseline
from polychrome.models.card import LoadedModel
from polychrome.models.official import load_official
from polychrome.models.registry import build_model, list_models
from polychrome.models.weights import BUNDLED, bundled_weights, load_weights

BASELINES_NEEDING_DATA = ("random", "mean")


def load_model(name_or_path: str, fit_data: str | None = None, size: int = 64, fit_images: int = 2048) -> LoadedModel:
    """Any model by name, in eval mode, with its card:

    - ``default`` / ``guided``: the bundled trained models (see README, "The bundled model");
    - a weights file ``*.safetensors`` written by ``polychrome export-weights``;
    - a registered name (``gray``, ``levin``; ``random`` / ``mean`` fitted on ``fit_images`` of ``fit_data``
      at ``size``);
    - ``eccv16-official:PATH`` / ``siggraph17-official:PATH``: the released weights (input size 256);
    - a checkpoint file or run directory (input size: the size it was trained at).
    """
    if name_or_path in BUNDLED:
        return load_weights(bundled_weights(name_or_path))
    if name_or_path.endswith(".safetensors"):
        return load_weights(name_or_path)
    kind, sep, path = name_or_path.partition("-official:")
    if sep:
        return load_official(kind, path)
    if name_or_path in list_models():
        model = build_model(name_or_path, **({"size": size} if name_or_path in BASELINES_NEEDING_DATA else {}))
        if name_or_path in BASELINES_NEEDING_DATA:
            if not isinstance(model.network, FittedBaseline):
                raise TypeError(f"{name_or_path} is listed as fitted from data but is a {type(model.network).__name__}")
            _fit(model.network, fit_data, size, fit_images, name_or_path)
        return model.eval()
    from polychrome.checkpoints import load_checkpoint_model

    return load_checkpoint_model(name_or_path)[0]


def _fit(model: FittedBaseline, fit_data: str | None, size: int, fit_images: int, name: str) -> None:
    if fit_data is None:
        raise ValueError(
            f"baseline {name!r} needs training images to fit on: give --fit-data SPEC "
            "(for cifar10, places365 and imagenet the training split is the default)"
        )
    dataset = open_dataset(fit_data, eval_transform(size))
    chosen = torch.randperm(length(dataset), generator=torch.Generator().manual_seed(0))[:fit_images].tolist()
    loader = DataLoader(SkipUnreadable(Subset(dataset, chosen)), batch_size=256, collate_fn=collate_images)
    model.fit(batch.images for batch in loader if len(batch.images))
