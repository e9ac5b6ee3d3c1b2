"""The example strips of a study: the same few photos of each evaluation set, colourised by every run, as one
WebP of square thumbnails per run and set (and the originals, once); the report lays them out as a grid.

A strip is lossy WebP at quality 90 and keeps small photos at their own size (CIFAR-10's 32 px are not stored
enlarged to 96): a study's hundreds of strips are then about a ninth of the PNGs they were (docs/gpu.md: the
repository travels to a lent GPU whole). The reader enlarges them again, nearest, as the writer once did."""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from typing import cast

import numpy as np

from polychrome.files import atomic_path
from polychrome.study.spec import EvalSet, Study

EXAMPLE_SIDE = 96  # pixels of one example thumbnail (a centre square of the photo), as the report's grid shows it
# WebP quality of a strip and of the report's grid: on the studies' strips a mean error of 1.8 of 255 per channel,
# at a seventh of a PNG's bytes. Decoding is exact, so a grid drawn from the same strips is the same bytes.
WEBP_QUALITY = 90


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


def _thumbnail(image, cell: int) -> np.ndarray:
    """The centre square of a uint8 (3, H, W) image at ``cell`` pixels (nearest when enlarging a tiny one)."""
    from PIL import Image

    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[:, top : top + side, left : left + side].permute(1, 2, 0).numpy())
    return np.asarray(
        square.resize((cell, cell), Image.Resampling.NEAREST if side < cell else Image.Resampling.LANCZOS)
    )


def write_webp(path: Path, pixels: np.ndarray) -> None:
    """(H, W, 3) uint8 pixels to ``path`` as a lossy WebP at WEBP_QUALITY, atomically."""
    from PIL import Image

    with atomic_path(path) as temporary:
        Image.fromarray(pixels).save(temporary, format="WEBP", quality=WEBP_QUALITY, method=6)


def write_examples(study: Study, key: str, model, size: int, temperature: float, eval_set: EvalSet) -> None:
    """The set's example photos colourised by ``model``, side by side in one WebP (and the originals, once).
    A cell is the largest photo's centre square, at most EXAMPLE_SIDE pixels: photos all smaller are kept at
    their own size."""
    from polychrome.pipeline import ColorizationPipeline

    photos = example_photos(eval_set, study.examples)
    strips = {key: ColorizationPipeline(model, device=None).colorize_images(photos, size, temperature)}
    if not study.example_path("truth", eval_set).exists():
        strips["truth"] = photos
    cell = min(EXAMPLE_SIDE, max(min(photo.shape[-2:]) for photo in photos))
    for name, images in strips.items():
        write_webp(study.example_path(name, eval_set), np.concatenate([_thumbnail(image, cell) for image in images], 1))


def has_examples(study: Study, key: str) -> bool:
    """Whether the run ``key`` has its strip on every evaluation set."""
    return all(study.example_path(key, eval_set).exists() for eval_set in study.evaluate)


def read_strip(path: Path) -> list:
    """An example strip cut back into its square thumbnails, as uint8 (3, EXAMPLE_SIDE, EXAMPLE_SIDE) tensors
    (a strip of small photos enlarged, nearest)."""
    import torch
    from PIL import Image

    strip = Image.open(path).convert("RGB")
    cell = strip.height
    squares = [strip.crop((left, 0, left + cell, cell)) for left in range(0, strip.width, cell)]
    return [
        torch.from_numpy(np.array(s.resize((EXAMPLE_SIDE, EXAMPLE_SIDE), Image.Resampling.NEAREST))).permute(2, 0, 1)
        for s in squares
    ]
