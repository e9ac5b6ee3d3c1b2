"""Evaluating a model on a dataset: Zhang et al.'s raw and rebalanced AuC and the mean ab error.

Protocol: each image is resized (shorter side) and centre-cropped to ``size``; the model sees its L at
that size, its ab is upsampled to the same size and compared with the true ab there. Images that are
grayscale by Zhang's rule are skipped and counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from polychrome.color import ab_gamut, is_grayscale, uint8_to_lab
from polychrome.data import SkipUnreadable, collate_images, eval_transform, open_dataset
from polychrome.metrics import AccuracyCurves
from polychrome.models import Colorizer, create_model, upsample_ab


@dataclass
class Evaluation:
    model: str
    data: str
    size: int
    temperature: float
    images: int
    grayscale_skipped: int
    unreadable: int
    pixels: int
    auc_raw: float
    auc_rebalanced: float
    mean_ab_error: float
    seconds: float


def load_model(name_or_path: str, fit_data: str | None = None, size: int = 32) -> Colorizer:
    """A registered model name (baselines ``random``/``mean`` fitted on ``fit_data``), or a checkpoint / run dir."""
    from polychrome.models import list_models

    if name_or_path in list_models():
        model = create_model(name_or_path, **({"size": size} if name_or_path in ("random", "mean") else {}))
        if hasattr(model, "fit"):
            if fit_data is None:
                raise ValueError(f"baseline {name_or_path!r} needs training images to fit on: give --fit-data SPEC")
            loader = DataLoader(SkipUnreadable(Subset(open_dataset(fit_data, eval_transform(size)), range(2048))), batch_size=256, collate_fn=collate_images)
            model.fit(batch.images for batch in loader)
        return model.eval()
    from polychrome.checkpoints import load_checkpoint

    return load_checkpoint(name_or_path)[0]


@torch.no_grad()
def evaluate(model: Colorizer, data: str, size: int, temperature: float = 0.38, limit: int | None = None,
             batch_size: int = 128, workers: int = 2, device: str = "cpu", name: str = "") -> Evaluation:
    torch.set_flush_denormal(True)  # subnormal floats slow CPU inference many times over (see train.py)
    dataset = open_dataset(data, eval_transform(size))
    if limit is not None:
        dataset = Subset(dataset, range(min(limit, len(dataset))))
    loader = DataLoader(SkipUnreadable(dataset), batch_size=batch_size, num_workers=workers, collate_fn=collate_images)
    model = model.to(device).eval()
    curves = AccuracyCurves(ab_gamut("zhang").to(device))
    images = gray = unreadable = 0
    start = time.perf_counter()
    for batch in loader:
        unreadable += len(batch.errors)
        if not len(batch.images):
            continue
        lab = uint8_to_lab(batch.images.to(device))
        lightness, ab = lab[:, :1], lab[:, 1:]
        colour = ~is_grayscale(ab)
        images += len(ab)
        gray += int((~colour).sum())
        if colour.any():
            predicted = upsample_ab(model.predict_ab(lightness[colour], temperature), ab.shape[-2:])
            curves.update(predicted.float(), ab[colour])
    scores = curves.auc()
    return Evaluation(name or type(model).__name__, data, size, temperature, images, gray, unreadable, curves.pixels,
                      scores["auc_raw"], scores["auc_rebalanced"], scores["mean_ab_error"], time.perf_counter() - start)
