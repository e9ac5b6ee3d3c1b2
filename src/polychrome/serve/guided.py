"""The guided page's server side: colour hints and a reference photo steer a model that takes them, live.

A person places, moves and deletes hints one at a time, and each change asks for a new colourisation, so
everything that does not depend on the hints is done once per upload and kept (``GuidedEntry``, in the
app's ``PredictionCache``): the photo's L at full resolution, at display size and at the network's input
size. A hint change then costs one network pass at the network's own input size, a merge of its ab with
the display-size L (``DISPLAY_SIDE``) and a JPEG; only the download merges at full resolution, reusing the
network's output for the same hints. benchmarks/guided_latency.py measures each part.

A guided model regresses ab and has no distribution over colours, so the palette of suggested colours at a
point comes from an automatic classification model (the bundled ``default``): its most likely ab bins
there, drawn at the photo's own lightness.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from polychrome.color import lab_to_uint8
from polychrome.data import write_png
from polychrome.hints import GlobalHint, LocalHint, parse_hints
from polychrome.pipeline import ColorizationPipeline, Prediction, PreparedPhoto, chw_view, to_hwc
from polychrome.serve.prediction_cache import Entry, distribution, prediction_tensors, read_upload, storage_bytes

DISPLAY_SIDE = 1024  # the long side of what the page shows; the download is at the photo's own size
JPEG_QUALITY = 90  # the display render: about 6 ms for a megapixel where PNG takes about 45 ms
PALETTE_SIZE = 8  # suggested colours per click
PALETTE_SOURCE = "colours the automatic model finds likely here"


def display_size(height: int, width: int, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """(h, w) of a photo shown with its long side at most ``side`` pixels (never enlarged)."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class GuidedEntry:
    """One upload on the guided page: what does not change with the hints, and the latest hint state's output.

    ``photo`` is the upload prepared at its own size (the download), ``shown`` the same photo at display
    size (what the page shows; the network sees what it sees in ``photo``, except a full-resolution model
    such as Levin's, which sees what it renders). ``last`` is the key of the latest hint state and its
    prediction, so a download of what is on show runs no network. ``palette`` is the automatic model's
    prediction, made on the first click.
    """

    model: str
    pipeline: ColorizationPipeline
    photo: PreparedPhoto
    shown: PreparedPhoto
    reference: GlobalHint | None = None
    reference_name: str | None = None
    last: tuple[tuple, Prediction] | None = None
    palette: Entry | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.photo.size

    @property
    def nbytes(self) -> int:
        """What the entry holds now: the photo's planes at both sizes and what the page has added since (the
        latest hint state's prediction, the palette model's, the reference's distribution), each storage counted
        once. The cache measures an entry again after each job that may add to it (``PredictionCache.update``)."""
        photos = [self.photo, self.shown]
        predictions = [kept for kept in (self.last and self.last[1], self.palette and self.palette.prediction) if kept]
        photos += [prediction.photo for prediction in predictions]
        tensors = [plane for photo in (self.photo, self.shown) for plane in (photo.lightness, photo.network_input)]
        tensors += [tensor for prediction in predictions for tensor in prediction_tensors(prediction)]
        if self.reference is not None:
            tensors.append(self.reference.distribution)
        alphas = {id(photo.alpha): photo.alpha for photo in photos if photo.alpha is not None}
        return storage_bytes(tensors) + sum(alpha.nbytes for alpha in alphas.values())


def open_guided(name: str, pipeline: ColorizationPipeline, file: BinaryIO, max_pixels: int) -> GuidedEntry:
    """Decode an upload and prepare it at its own and at display size (a job for ``Gate.run``; ImageReadError
    if unreadable)."""
    rgb, alpha = read_upload(file, max_pixels)
    photo = pipeline.prepare(rgb, alpha)
    return GuidedEntry(name, pipeline, photo, pipeline.resized(photo, display_size(*photo.size)))


def read_hints(entry: GuidedEntry, hints: object) -> list[LocalHint]:
    """The page's hints (dicts as in a hint file, docs/hints.md) in the photo's pixels; a ValueError naming
    the bad entry (``hints[i]: ...``) otherwise."""
    if not isinstance(hints, list):
        raise ValueError(f"hints must be a list of hints, got {type(hints).__name__}; see docs/hints.md")
    return parse_hints(hints, entry.size)


def read_reference(file: BinaryIO, max_pixels: int) -> GlobalHint:
    """A reference photo's global hint (a job for ``Gate.run``; ImageReadError if unreadable)."""
    rgb, _ = read_upload(file, max_pixels)
    return GlobalHint.from_rgb(chw_view(rgb))


def guided_prediction(entry: GuidedEntry, hints: list[LocalHint], full: bool) -> Prediction:
    """The pipeline's prediction for the hints and the entry's reference, made once per hint state (kept in
    ``entry.last``): the network at its own input size, or a full-resolution model (Levin) at the size
    rendered, the display size or with ``full`` the photo's own."""
    pipeline, reference = entry.pipeline, entry.reference  # read once: the page may replace it meanwhile
    full_resolution = pipeline.card.full_resolution
    key = (tuple(hints), reference, full and full_resolution)
    if entry.last is not None and entry.last[0] == key:
        return entry.last[1]
    prediction = pipeline.predict([entry.photo if full else entry.shown], [hints], [reference])[0]
    entry.last = key, prediction
    return prediction


STEPS = ("predict", "merge", "encode")  # render_guided's, as its ``spent`` names them


def render_guided(
    entry: GuidedEntry, hints: list[LocalHint], full: bool, spent: dict[str, float] | None = None
) -> tuple[bytes, str]:
    """The colourisation for ``hints`` as (image bytes, media type): a JPEG at display size (PNG when the
    photo has alpha) for the page, or with ``full`` a PNG at the photo's own size, the pixels
    ``polychrome colorize PHOTO --hints FILE.json`` writes (a job for ``Gate.run``). ``spent`` gets the
    milliseconds of each step (predict, merge, encode), for the answer's Server-Timing."""
    target = entry.photo if full else entry.shown
    marks = [time.perf_counter()]
    prediction = guided_prediction(entry, hints, full)
    marks.append(time.perf_counter())
    rgb = to_hwc(entry.pipeline.render(prediction, onto=target))
    marks.append(time.perf_counter())
    image = encode(rgb, target.alpha, png=full)
    marks.append(time.perf_counter())
    if spent is not None:
        spent.update((step, (end - start) * 1e3) for step, (start, end) in zip(STEPS, pairwise(marks), strict=True))
    return image


def encode(rgb: np.ndarray, alpha: np.ndarray | None, png: bool) -> tuple[bytes, str]:
    """(H, W, 3) uint8 as PNG (always with alpha), else JPEG at 4:4:4 so that colours stay put at a hint."""
    buffer = io.BytesIO()
    if png or alpha is not None:
        write_png(buffer, rgb, alpha)
        return buffer.getvalue(), "image/png"
    Image.fromarray(rgb).save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue(), "image/jpeg"


@torch.no_grad()
def palette(entry: GuidedEntry, name: str, pipeline: ColorizationPipeline, x: int, y: int) -> dict:
    """The ``PALETTE_SIZE`` colours an automatic classification model (``name``) finds most likely at pixel
    (x, y), as sRGB at the photo's own L there, with their probabilities. Its forward pass runs on the
    first click and is kept; the distribution is read as ``/api/distribution`` reads it."""
    if entry.palette is None or entry.palette.model != name:
        prediction = pipeline.predict([pipeline.prepare_lightness(entry.photo.lightness)])[0]
        entry.palette = Entry(name, pipeline, prediction)
    shown = distribution(entry.palette, x, y)
    p, top = torch.tensor(shown["p"]).topk(min(PALETTE_SIZE, len(shown["p"])))
    ab = torch.tensor(shown["bins"], dtype=torch.float32)[top]
    lightness = entry.photo.lightness[0, y, x].float().cpu().expand(len(top), 1)
    rgb = lab_to_uint8(torch.cat([lightness, ab], dim=1)[..., None, None])[..., 0, 0]
    return {
        "x": x,
        "y": y,
        "model": name,
        "source": PALETTE_SOURCE,
        "colors": [{"rgb": colour, "p": round(float(q), 4)} for colour, q in zip(rgb.tolist(), p, strict=True)],
    }
