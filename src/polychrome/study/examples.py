"""The example strips of a study: the same few photos of each evaluation set, colourised by every run, as one
PNG of square thumbnails per run and set (and the originals, once); the report lays them out as a grid."""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from typing import cast

import numpy as np

from polychrome.files import atomic_path
from polychrome.study.spec import EvalSet, Study

EXAMPLE_SIDE = 96  # pixels of one example thumbnail (a centre square of the photo)


def example_photos(eval_set: EvalSet, count: int) -> list:
    """``count`` colour photos of the set, the same for every run: evenly spaced through it, each moved
    on to the next colour one where it falls on a grayscale image (which evaluation skips)."""
    from polychrome.color import is_grayscale, uint8_to_lab
    from polychrome.data import open_dataset

    dataset = open_dataset(eval_set.data)
    length = len(cast(Sized, dataset))  # every dataset a spec names has a length
    photos, index = [], 0
    for k in range(count):
        index = max(index, k * length // count)
        while index < length:
            image = dataset[index][0]
            index += 1
            if not bool(is_grayscale(uint8_to_lab(image[None])[:, 1:])):
                photos.append(image)
                break
    return photos


def _thumbnail(image) -> np.ndarray:
    """The centre square of a uint8 (3, H, W) image at EXAMPLE_SIDE pixels (nearest when enlarging a tiny one)."""
    from PIL import Image

    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[:, top : top + side, left : left + side].permute(1, 2, 0).numpy())
    return np.asarray(
        square.resize(
            (EXAMPLE_SIDE, EXAMPLE_SIDE), Image.Resampling.NEAREST if side < EXAMPLE_SIDE else Image.Resampling.LANCZOS
        )
    )


def write_examples(study: Study, key: str, model, size: int, temperature: float, eval_set: EvalSet) -> None:
    """The set's example photos colourised by ``model``, side by side in one PNG (and the originals, once)."""
    from polychrome.data import write_png
    from polychrome.pipeline import colorize_images

    photos = example_photos(eval_set, study.examples)
    strips = {key: colorize_images(model, photos, size, temperature)}
    if not study.example_path("truth", eval_set).exists():
        strips["truth"] = photos
    for name, images in strips.items():
        with atomic_path(study.example_path(name, eval_set)) as temporary, open(temporary, "wb") as f:
            write_png(f, np.concatenate([_thumbnail(image) for image in images], axis=1))


def has_examples(study: Study, key: str) -> bool:
    """Whether the run ``key`` has its strip on every evaluation set."""
    return all(study.example_path(key, eval_set).exists() for eval_set in study.evaluate)


def read_strip(path: Path) -> list:
    """An example strip cut back into its square thumbnails, as uint8 (3, H, W) tensors."""
    import torch
    from PIL import Image

    strip = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
    return list(strip.split(EXAMPLE_SIDE, dim=2))
