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
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from polychrome.color import lab_to_uint8
from polychrome.data import write_png
from polychrome.hints import GlobalHint, LocalHint, parse_hints
from polychrome.pipeline import ColorizationPipeline, Prediction, chw_view, lightness_of, merge, model_input, side_of
from polychrome.serve.prediction_cache import Entry, distribution, read_upload

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

    ``lightness`` (1, H, W), ``display`` (1, h, w) and ``network_input`` (1, 1, S, S) are the photo's L in
    [0, 100] at its own size, at display size and at the network's input size (for a full-resolution model
    such as Levin's, which sees what it renders, ``network_input`` is unused). ``last`` is the key of the
    latest hint state and the network's ab for it, so a download of what is on show runs no network.
    ``palette`` is the automatic model's prediction, made on the first click.
    """

    model: str
    pipeline: ColorizationPipeline
    lightness: Tensor
    display: Tensor
    network_input: Tensor
    alpha: np.ndarray | None
    display_alpha: np.ndarray | None
    reference: GlobalHint | None = None
    reference_name: str | None = None
    last: tuple[tuple, Tensor] | None = None
    palette: Entry | None = None

    @property
    def size(self) -> tuple[int, int]:
        return side_of(self.lightness)

    @property
    def nbytes(self) -> int:
        """The planes kept for the upload; what is added later (the palette model's logits, the latest ab) is
        not counted, as the cache records an entry's size when it is put."""
        planes = [self.lightness, self.network_input] + ([] if self.display is self.lightness else [self.display])
        alphas = [a for a in (self.alpha, self.display_alpha) if a is not None]
        return sum(t.numel() * t.element_size() for t in planes) + sum(a.nbytes for a in alphas)


def open_guided(name: str, pipeline: ColorizationPipeline, file: BinaryIO, max_pixels: int) -> GuidedEntry:
    """Decode an upload and keep its L at the three sizes (a job for ``Gate.run``; ImageReadError if unreadable)."""
    rgb, alpha = read_upload(file, max_pixels)
    lightness = lightness_of(chw_view(rgb).to(pipeline.device))
    height, width = side_of(lightness)
    shown = display_size(height, width)
    display = model_input([lightness], shown)[0]
    network_input = model_input([lightness], pipeline.input_size)
    display_alpha = None
    if alpha is not None:
        display_alpha = np.asarray(Image.fromarray(alpha).resize(shown[::-1], Image.Resampling.BILINEAR))
    return GuidedEntry(name, pipeline, lightness, display, network_input, alpha, display_alpha)


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


@torch.no_grad()
def network_ab(entry: GuidedEntry, hints: list[LocalHint], full: bool) -> Tensor:
    """ab (2, s, s) for the hints and the entry's reference: the network's output at its own input size,
    run once per hint state (kept in ``entry.last``). A full-resolution model (Levin) runs at the size
    rendered instead: the display size, or the photo's own for the download."""
    pipeline, reference = entry.pipeline, entry.reference  # read once: the page may replace it meanwhile
    full_resolution = pipeline.card.full_resolution
    key = (tuple(hints), reference, full and full_resolution)
    if entry.last is not None and entry.last[0] == key:
        return entry.last[1]
    shown = entry.lightness if full else entry.display
    lightness = shown[None] if full_resolution else entry.network_input
    inputs = pipeline.hint_inputs([hints], [reference], [entry.size], side_of(lightness))
    ab = pipeline.predict_ab(lightness, None, inputs)[0]
    entry.last = key, ab
    return ab


def render_guided(entry: GuidedEntry, hints: list[LocalHint], full: bool) -> tuple[bytes, str]:
    """The colourisation for ``hints`` as (image bytes, media type): a JPEG at display size (PNG when the
    photo has alpha) for the page, or with ``full`` a PNG at the photo's own size, as
    ``polychrome colorize PHOTO --hints FILE.json`` writes it (a job for ``Gate.run``)."""
    torch.set_flush_denormal(True)  # subnormal floats slow CPU inference many times over
    ab = network_ab(entry, hints, full)
    lightness, alpha = (entry.lightness, entry.alpha) if full else (entry.display, entry.display_alpha)
    with torch.no_grad():
        rgb = merge(lightness, ab).permute(1, 2, 0).cpu().numpy()
    return encode(rgb, alpha, png=full)


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
        output = pipeline.forward(model_input([entry.lightness], pipeline.input_size))[0]
        entry.palette = Entry(name, pipeline, Prediction(entry.lightness, output), None)
    shown = distribution(entry.palette, x, y)
    p, top = torch.tensor(shown["p"]).topk(min(PALETTE_SIZE, len(shown["p"])))
    ab = torch.tensor(shown["bins"], dtype=torch.float32)[top]
    lightness = entry.lightness[0, y, x].float().cpu().expand(len(top), 1)
    rgb = lab_to_uint8(torch.cat([lightness, ab], dim=1)[..., None, None])[..., 0, 0]
    return {
        "x": x,
        "y": y,
        "model": name,
        "source": PALETTE_SOURCE,
        "colors": [{"rgb": colour, "p": round(float(q), 4)} for colour, q in zip(rgb.tolist(), p, strict=True)],
    }
