"""Colour hints as data: the clicks and reference photo that steer a guided colourisation network.

Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors") give a network two
kinds of hint beside L:

- **local hints**: points (x, y) of the photo, each with a colour (only its ab is used: L always comes from the
  photo) spread over a small square patch. A network sees them as two ab planes and a mask (``hint_planes``).
- **global hints**: a reference photo's (or, in evaluation, the truth's) distribution over the 313 ab bins and
  its mean saturation (``GlobalHint``).

Training and evaluation simulate both from the true colours (``simulate_hints``, ``evaluation_hints``), as
the paper does: a geometric number of points, placed around the centre, each coloured with the mean true ab of
its patch. Every draw comes from a ``torch.Generator`` on the CPU, so a seed gives the same hints on any
machine and any batch size. The user-facing JSON format is documented in docs/hints.md.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import torch
from torch import Tensor

from polychrome.color import ab_gamut, encode_hard, rgb_to_lab, uint8_to_lab
from polychrome.data.images import load_rgb
from polychrome.data.loader import mix_seed

# The public names, as the README's "What works today" table lists them.
__all__ = ["GlobalHint", "LocalHint", "evaluation_hints", "load_hint_file", "parse_hints", "simulate_hints"]

# Zhang et al. 2017: the number of points is geometric with p = 1/8, zero included (mean (1 - p) / p = 7), so
# the same network also learns to colourise without hints.
GEOMETRIC_P = 1 / 8
# Zhang et al. 2017: square patches of side 1 to 9 pixels, at their 256-px training size.
PATCH_SIDES_AT_256 = tuple(range(1, 10))
# Our choice (the paper's own rate is not restated here): how often a simulated training sample also gets
# the truth's global hints, so the network learns both with and without them.
GLOBAL_HINT_PROBABILITY = 0.1
PLACEMENTS = ("gaussian", "uniform")
_ENTRY_KEYS = ("x", "y", "rgb", "patch")
_STROKE_KEYS = ("stroke", "width", "rgb")
# A stroke (a painted polyline, Levin et al. 2004's scribbles) is a square brush of side ``width`` stamped at
# every pixel along it. Wider than this is no longer a stroke but a fill, and its cost grows with the side.
MAX_STROKE_WIDTH = 64
# Points of one stroke: what a hand drags in a few seconds; the server counts them towards its hint limit.
MAX_STROKE_POINTS = 1000
# Pixels along all the strokes of one hint list (one stamp each): about nine diagonals of a 2-megapixel photo,
# which keeps a list of strokes to at most this many patches however it is drawn.
MAX_STROKE_LENGTH = 20_000
_FILE_KEYS = ("hints", "reference")


@dataclass(frozen=True)
class LocalHint:
    """One colour click: pixel (x, y) of the photo (column, row from the top left), its ab over a patch.

    ``ab`` is the hint's colour as Lab (a, b), each in about [-110, 110]; ``rgb`` is the sRGB colour (0-255)
    a person chose, kept for showing and saving it (``None`` for simulated hints, whose ab is a mean of true
    colours and need not be an sRGB colour). ``patch`` is the side of the square it covers, in photo pixels:
    rows ``y - (patch - 1) // 2`` to ``y + patch // 2`` (so an odd side is centred), clipped to the photo.
    Build one from a colour with ``LocalHint.from_rgb``.
    """

    x: int
    y: int
    ab: tuple[float, float]
    patch: int = 1
    rgb: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.x < 0 or self.y < 0:
            raise ValueError(f"hint at ({self.x}, {self.y}) has a negative coordinate; use pixels from the top left")
        if self.patch < 1:
            raise ValueError(f"hint patch {self.patch} must be at least 1 pixel")
        if not all(math.isfinite(value) for value in self.ab):
            raise ValueError(f"hint ab {self.ab} must be finite numbers")

    @classmethod
    def from_rgb(cls, x: int, y: int, rgb: Sequence[int], patch: int = 1) -> LocalHint:
        """A hint whose ab is that of the sRGB colour ``rgb`` (three ints in 0-255; its L is not used)."""
        colour = tuple(int(value) for value in rgb)
        if len(colour) != 3 or not all(0 <= value <= 255 for value in colour):
            raise ValueError(f"rgb {list(rgb)} must be three integers in 0-255")
        return cls(x, y, ab_of_rgb(colour), patch, (colour[0], colour[1], colour[2]))

    def box(self, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The patch as (top, bottom, left, right) pixel bounds, bottom and right exclusive, inside the photo.

        ``image_size`` is the photo's (H, W); a hint whose point lies outside it is a ValueError.
        """
        height, width = image_size
        if not (self.x < width and self.y < height):
            raise ValueError(f"hint at ({self.x}, {self.y}) lies outside the {width}x{height} image")
        top, left = self.y - (self.patch - 1) // 2, self.x - (self.patch - 1) // 2
        return max(top, 0), min(top + self.patch, height), max(left, 0), min(left + self.patch, width)


@functools.lru_cache(maxsize=4096)
def ab_of_rgb(colour: tuple[int, ...]) -> tuple[float, float]:
    """The Lab (a, b) of an sRGB colour (three ints in 0-255). Cached: the guided page sends every hint again with
    each change, a stroke gives each of its points its colour, and one conversion of a single colour through torch
    costs about 0.3 ms (30 clicks took 9 ms to parse)."""
    lab = rgb_to_lab(torch.tensor(colour, dtype=torch.float64).view(3, 1, 1) / 255)
    return float(lab[1]), float(lab[2])


# ---------------------------------------------------------------------------------------------- parsing


class _EntryError(ValueError):
    """What is wrong with one hint entry; parse_hints adds the file and the entry's index."""


def _coordinate(name: str, value: object, extent: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _EntryError(f"{name}={value!r} is not a number; give the pixel {what} as a number")
    pixel = math.floor(value)
    if not 0 <= pixel < extent:
        raise _EntryError(f"{name}={value!r} is outside the image (0 to {extent - 1}); give a pixel inside the photo")
    return pixel


def _colour(value: object) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise _EntryError(f"rgb={value!r} is not three values; give the colour as [r, g, b], each 0-255")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
        raise _EntryError(f"rgb={list(value)!r} is out of range; give each of r, g, b as an integer 0-255")
    return (value[0], value[1], value[2])


def _patch(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _EntryError(f"patch={value!r} is not a whole number of pixels; give an integer of at least 1")
    return value


def _fields(entry: object) -> tuple[object, object, object, object]:
    """(x, y, rgb, patch) of a tuple ``(x, y, (r, g, b)[, patch])`` or a dict ``{"x", "y", "rgb"[, "patch"]}``."""
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - set(_ENTRY_KEYS))
        missing = [key for key in _ENTRY_KEYS[:3] if key not in entry]
        if unknown or missing:
            problem = f"unknown keys {unknown}" if unknown else f"missing {missing}"
            raise _EntryError(f"{problem}; a hint is {{'x': .., 'y': .., 'rgb': [r, g, b]}} with optional 'patch'")
        return entry["x"], entry["y"], entry["rgb"], entry.get("patch", 1)
    if isinstance(entry, (list, tuple)) and len(entry) in (3, 4):
        return entry[0], entry[1], entry[2], entry[3] if len(entry) == 4 else 1
    raise _EntryError(f"{entry!r} is not a hint; give (x, y, (r, g, b)) or {{'x': .., 'y': .., 'rgb': [r, g, b]}}")


def _parse_entry(entry: object, image_size: tuple[int, int]) -> LocalHint:
    height, width = image_size
    if isinstance(entry, LocalHint):
        _coordinate("x", entry.x, width, "column")
        _coordinate("y", entry.y, height, "row")
        return entry
    x, y, rgb, patch = _fields(entry)
    column = _coordinate("x", x, width, "column")
    row = _coordinate("y", y, height, "row")
    return LocalHint.from_rgb(column, row, _colour(rgb), _patch(patch))


def is_stroke(entry: object) -> TypeGuard[Mapping]:
    """Whether a hint entry is a stroke ``{"stroke": [[x, y], ...], "width": .., "rgb": [r, g, b]}``."""
    return isinstance(entry, Mapping) and "stroke" in entry


def _line(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """The pixels from ``start`` to ``end`` (both included), one per step along the longer axis (Bresenham)."""
    (x0, y0), (x1, y1) = start, end
    steps = max(abs(x1 - x0), abs(y1 - y0))
    if steps == 0:
        return [start]
    # Integer rounding of the exact line (ties away from the start), so the same pixels on every machine.
    return [
        (x0 + (2 * i * (x1 - x0) + steps) // (2 * steps), y0 + (2 * i * (y1 - y0) + steps) // (2 * steps))
        for i in range(steps + 1)
    ]


def _stroke_points(value: object, image_size: tuple[int, int]) -> list[tuple[int, int]]:
    if not isinstance(value, (list, tuple)):
        raise _EntryError(f"stroke={value!r} is not a list of points; give the polyline as [[x0, y0], [x1, y1], ...]")
    if not 2 <= len(value) <= MAX_STROKE_POINTS:
        raise _EntryError(
            f"the stroke has {len(value):,} point{'s' * (len(value) != 1)}; give 2 to {MAX_STROKE_POINTS:,} points"
        )
    height, width = image_size
    points = []
    for index, point in enumerate(value):
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise _EntryError(f"stroke[{index}]={point!r} is not a point; give each point as [x, y]")
        points.append(
            (
                _coordinate(f"stroke[{index}] x", point[0], width, "column"),
                _coordinate(f"stroke[{index}] y", point[1], height, "row"),
            )
        )
    return points


def _parse_stroke(entry: Mapping, image_size: tuple[int, int], room: int) -> tuple[list[LocalHint], int]:
    """A stroke's patches (a square of side ``width`` at each pixel along its polyline, in order, each pixel
    once) and its length in pixels, counting a retraced pixel again. ``room`` is how many pixels of stroke the
    hint list may still hold (``MAX_STROKE_LENGTH``)."""
    unknown = sorted(set(entry) - set(_STROKE_KEYS))
    missing = [key for key in _STROKE_KEYS if key not in entry]
    if unknown or missing:
        problem = f"unknown keys {unknown}" if unknown else f"missing {missing}"
        raise _EntryError(
            f"{problem}; a stroke is {{'stroke': [[x0, y0], [x1, y1], ...], 'width': .., 'rgb': [r, g, b]}}"
        )
    side = entry["width"]
    if isinstance(side, bool) or not isinstance(side, int) or not 1 <= side <= MAX_STROKE_WIDTH:
        raise _EntryError(f"width={side!r} is not a whole number of pixels from 1 to {MAX_STROKE_WIDTH}; give one")
    points = _stroke_points(entry["stroke"], image_size)
    rgb = _colour(entry["rgb"])
    # Measured before any pixel is listed, so a long stroke costs no more than its refusal.
    length = 1 + sum(max(abs(x1 - x0), abs(y1 - y0)) for (x0, y0), (x1, y1) in itertools.pairwise(points))
    if length > room:
        raise _EntryError(
            f"the strokes are {MAX_STROKE_LENGTH - room + length:,} pixels long in all, above the limit of "
            f"{MAX_STROKE_LENGTH:,}; draw shorter strokes"
        )
    first = LocalHint.from_rgb(points[0][0], points[0][1], rgb, side)  # one colour conversion per stroke
    pixels = dict.fromkeys(pixel for start, end in itertools.pairwise(points) for pixel in _line(start, end))
    return [LocalHint(x, y, first.ab, side, rgb) for x, y in pixels], length


def parse_hints(
    entries: Sequence[object], image_size: tuple[int, int], source: str | Path | None = None
) -> list[LocalHint]:
    """Local hints from tuples ``(x, y, (r, g, b))`` (optionally a fourth item, the patch side), dicts
    ``{"x": .., "y": .., "rgb": [r, g, b], "patch": ..}`` ("patch" optional, default 1), ``LocalHint``s, or
    strokes ``{"stroke": [[x0, y0], [x1, y1], ...], "width": .., "rgb": [r, g, b]}``.

    x and y are pixels of the photo of size ``image_size`` (H, W), from the top left; a fractional
    coordinate is the pixel it falls in. A stroke (Levin et al. 2004's scribbles) becomes one hint per pixel
    along its polyline, each a square patch of side ``width`` (1 to ``MAX_STROKE_WIDTH``), in order; it has 2
    to ``MAX_STROKE_POINTS`` points, and all strokes together at most ``MAX_STROKE_LENGTH`` pixels along their
    lines (a retraced pixel counted again). A bad entry raises one ValueError line naming ``source`` (a file, when there is one), the entry as
    ``hints[i]`` (counting from 0), what is wrong and the fix.
    """
    if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Sequence):
        where = f"{source}: " if source is not None else ""
        raise ValueError(f"{where}hints must be a list of hints, got {type(entries).__name__}; see docs/hints.md")
    hints: list[LocalHint] = []
    room = MAX_STROKE_LENGTH
    for index, entry in enumerate(entries):
        try:
            if is_stroke(entry):
                stroke, length = _parse_stroke(entry, image_size, room)
                room -= length
                hints.extend(stroke)
            else:
                hints.append(_parse_entry(entry, image_size))
        except _EntryError as error:
            where = f"{source}: " if source is not None else ""
            raise ValueError(f"{where}hints[{index}]: {error}") from None
    return hints


@dataclass(frozen=True)
class HintFile:
    """A parsed hint file: its local hints and the reference photo for global hints (or None)."""

    local: tuple[LocalHint, ...]
    reference: Path | None


def load_hint_file(path: str | Path, image_size: tuple[int, int]) -> HintFile:
    """Read a hint file: a JSON list of hint dicts, or ``{"hints": [...], "reference": "photo.jpg"}``.

    ``image_size`` is the (H, W) of the photo the hints are for. A relative reference path is taken from the
    hint file's folder. Bad JSON or a bad entry raises one ValueError line naming the file (see parse_hints).
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        reason = f"{error.msg} at line {error.lineno} column {error.colno}"
        raise ValueError(f"{path}: not valid JSON ({reason}); fix the file (format: docs/hints.md)") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text; save the hint file as UTF-8 JSON") from None
    reference = None
    if isinstance(document, dict):
        unknown = sorted(set(document) - set(_FILE_KEYS))
        if unknown or "hints" not in document:
            problem = f"unknown keys {unknown}" if unknown else "no 'hints' key"
            raise ValueError(f"{path}: {problem}; write {{'hints': [...], 'reference': 'photo.jpg'}} or a list")
        if document.get("reference") is not None:
            if not isinstance(document["reference"], str):
                raise ValueError(f"{path}: reference={document['reference']!r} must be a path to a photo, as a string")
            reference = path.parent / document["reference"]
        document = document["hints"]
    return HintFile(tuple(parse_hints(document, image_size, source=path)), reference)


# ---------------------------------------------------------------------------------------------- global hints


@dataclass(frozen=True, eq=False)
class GlobalHint:
    """A photo's colour statistics, Zhang et al. 2017's global hints.

    ``distribution``: (Q,) float32, the share of the photo's pixels whose ab falls nearest each bin of the gamut
    (Q = 313 for Zhang's), summing to 1. ``saturation``: the mean chroma sqrt(a^2 + b^2) over the pixels, in Lab
    units (0 for a gray photo; about 0-60 for real photos). This is polychrome's definition: Zhang et al. take
    the mean saturation in HSV, as we recall their paper; chroma measures the same thing in the Lab space the
    network works in. Compared by identity (``eq=False``): it holds a tensor.
    """

    distribution: Tensor
    saturation: float

    @classmethod
    def from_lab(cls, lab: Tensor, gamut: str = "zhang") -> GlobalHint:
        """The global hint of a photo in Lab: (3, H, W), L in [0, 100], ab in about [-110, 110]."""
        if lab.dim() != 3 or lab.shape[0] != 3:
            raise ValueError(f"expected Lab of shape (3, H, W), got {tuple(lab.shape)}")
        ab = lab[1:].float()
        bins = ab_gamut(gamut, device=ab.device)
        counts = torch.bincount(encode_hard(ab[None], bins).flatten(), minlength=len(bins)).float()
        saturation = float(ab.pow(2).sum(dim=0).sqrt().mean())
        return cls((counts / counts.sum()).cpu(), saturation)

    @classmethod
    def from_rgb(cls, rgb: Tensor, gamut: str = "zhang") -> GlobalHint:
        """The global hint of a uint8 RGB photo (3, H, W), values 0-255."""
        if rgb.dim() != 3 or rgb.shape[0] != 3:
            raise ValueError(f"expected an RGB photo of shape (3, H, W), got {tuple(rgb.shape)}")
        return cls.from_lab(uint8_to_lab(rgb[None])[0], gamut)

    @classmethod
    def from_file(cls, path: str | Path, gamut: str = "zhang") -> GlobalHint:
        """The global hint of a reference photo file (any format Pillow reads; ImageReadError if it cannot)."""
        return cls.from_rgb(torch.from_numpy(load_rgb(path)).permute(2, 0, 1), gamut)


def global_hint_tensors(hints: Sequence[GlobalHint | None], num_bins: int = 313) -> tuple[Tensor, Tensor, Tensor]:
    """A batch's global hints for a network: distribution (N, Q) (rows sum to 1, or 0 where none is given),
    saturation (N, 1) in Lab chroma units (0 where none), and given (N, 1), 1 where a hint is given, else 0."""
    distribution = torch.zeros(len(hints), num_bins)
    saturation, given = torch.zeros(len(hints), 1), torch.zeros(len(hints), 1)
    for row, hint in enumerate(hints):
        if hint is not None:
            if hint.distribution.shape != (num_bins,):
                raise ValueError(f"global hint {row} has {hint.distribution.shape[0]} bins, expected {num_bins}")
            distribution[row], saturation[row], given[row] = hint.distribution, hint.saturation, 1.0
    return distribution, saturation, given


def global_hint_vector(hints: Sequence[GlobalHint | None], num_bins: int = 313) -> Tensor:
    """A batch's global hints as a network takes them (``GLOBAL_HINT_WIDTH`` = Q + 2 per row): the
    distribution, the saturation / 100, and the given-flag, all 0 in a row without a hint."""
    distribution, saturation, given = global_hint_tensors(hints, num_bins)
    return torch.cat([distribution, saturation / 100, given], dim=1)


# ---------------------------------------------------------------------------------------------- planes


def _cells(hint: LocalHint, image_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The hint's patch on an (h, w) grid laid over the (H, W) photo: every cell the patch overlaps (at least
    one), as (top, bottom, left, right), bottom and right exclusive. Integer arithmetic, so exact."""
    (height, width), (rows, columns) = image_size, size
    top, bottom, left, right = hint.box(image_size)
    first_row, first_column = top * rows // height, left * columns // width
    last_row, last_column = -(-bottom * rows // height), -(-right * columns // width)  # ceiling division
    return first_row, max(last_row, first_row + 1), first_column, max(last_column, first_column + 1)


def hint_planes(
    hints: Sequence[LocalHint], image_size: tuple[int, int], size: tuple[int, int] | None = None
) -> tuple[Tensor, Tensor]:
    """The local hints of one photo as a network's input planes.

    ``image_size`` is the photo's (H, W), in which the hints' pixels are given; ``size`` the planes' (h, w)
    (default: the photo's). Each hint's patch, scaled to (h, w) (every cell it overlaps, at least one), gets
    its ab; where hints overlap, the later wins. Returns ab (2, h, w) float32 in about [-110, 110], 0 where
    there is no hint, and mask (1, h, w) float32, 1 under a hint and 0 elsewhere.
    """
    rows, columns = size if size is not None else image_size
    ab, mask = torch.zeros(2, rows, columns), torch.zeros(1, rows, columns)
    # A run of hints of one colour (a stroke is thousands of them) is drawn at once, as the union of its
    # patches: the same planes as drawing them one by one, since within a run the order changes nothing.
    for colour, run in itertools.groupby(hints, key=lambda hint: hint.ab):
        boxes = [_cells(hint, image_size, (rows, columns)) for hint in run]
        value = torch.tensor(colour, dtype=torch.float32)
        if len(boxes) == 1:
            top, bottom, left, right = boxes[0]
            ab[:, top:bottom, left:right] = value[:, None, None]
            mask[:, top:bottom, left:right] = 1.0
        else:
            covered = _union(boxes, rows, columns)
            ab[:, covered] = value[:, None]
            mask[:, covered] = 1.0
    return ab, mask


def _union(boxes: list[tuple[int, int, int, int]], rows: int, columns: int) -> Tensor:
    """(rows, columns) bool, True inside any of the boxes (top, bottom, left, right; bottom and right exclusive):
    +1 and -1 at each box's corners, summed down and across, is the number of boxes over each cell."""
    corners = torch.tensor(boxes, dtype=torch.long)
    top, bottom, left, right = corners.unbind(1)
    counts = torch.zeros((rows + 1) * (columns + 1), dtype=torch.int32)
    for row, column, sign in ((top, left, 1), (top, right, -1), (bottom, left, -1), (bottom, right, 1)):
        counts.index_add_(0, row * (columns + 1) + column, torch.full_like(row, sign, dtype=torch.int32))
    return counts.view(rows + 1, columns + 1).cumsum(0).cumsum(1)[:rows, :columns] > 0


def batch_hint_planes(
    hints: Sequence[Sequence[LocalHint]], image_size: tuple[int, int], size: tuple[int, int] | None = None
) -> tuple[Tensor, Tensor]:
    """``hint_planes`` for a batch of N photos of one size: ab (N, 2, h, w) and mask (N, 1, h, w)."""
    rows, columns = size if size is not None else image_size
    if not hints:
        return torch.zeros(0, 2, rows, columns), torch.zeros(0, 1, rows, columns)
    planes = [hint_planes(one, image_size, (rows, columns)) for one in hints]
    return torch.stack([ab for ab, _ in planes]), torch.stack([mask for _, mask in planes])


def network_hints(
    local: Sequence[Sequence[LocalHint]],
    global_hints: Sequence[GlobalHint | None],
    image_size: tuple[int, int],
    size: tuple[int, int],
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor]:
    """A batch's hints as a hint-taking network's extra inputs at its input ``size`` (h, w): ab planes
    (N, 2, h, w), mask (N, 1, h, w) and the global vector (N, Q + 2), on ``device``. ``image_size`` is the
    (H, W) the local hints' pixels are given in."""
    ab, mask = batch_hint_planes(local, image_size, size)
    return ab.to(device), mask.to(device), global_hint_vector(global_hints).to(device)


# ---------------------------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class SimulatedHints:
    """The hints simulated for one image: local hints (a tuple, in drawing order) and a global hint or None."""

    local: tuple[LocalHint, ...]
    global_hint: GlobalHint | None


def _generator(seed: torch.Generator | int) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)


def _draw_count(generator: torch.Generator, max_points: int | None) -> int:
    """Geometric with p = 1/8 counting from 0, as Zhang et al.'s code: add a point while a coin says so."""
    count = 0
    while (max_points is None or count < max_points) and float(torch.rand((), generator=generator)) < 1 - GEOMETRIC_P:
        count += 1
    return count


def _draw_start(generator: torch.Generator, extent: int, side: int, placement: str) -> int:
    """First row (or column) of a patch of ``side`` pixels that fits in ``extent``: uniform, or Gaussian around
    the centre with std extent / 4 (Zhang et al. 2017), clamped so the patch stays inside."""
    if placement == "uniform":
        return int(torch.randint(0, extent - side + 1, (), generator=generator))
    centre = extent / 2 + extent / 4 * float(torch.randn((), generator=generator))
    return min(max(math.floor(centre - side / 2), 0), extent - side)


def _draw_point(ab: Tensor, generator: torch.Generator, placement: str) -> LocalHint:
    """One simulated click on truth ab (2, H, W): a patch of side 1-9 px at 256 px scaled to the image (at
    least 1), coloured with the mean true ab inside it."""
    height, width = ab.shape[1:]
    side_at_256 = PATCH_SIDES_AT_256[int(torch.randint(0, len(PATCH_SIDES_AT_256), (), generator=generator))]
    side = min(max(1, round(side_at_256 * min(height, width) / 256)), height, width)
    top = _draw_start(generator, height, side, placement)
    left = _draw_start(generator, width, side, placement)
    mean = ab[:, top : top + side, left : left + side].mean(dim=(1, 2))
    # The point is the pixel whose patch box (LocalHint.box) is exactly the drawn square.
    return LocalHint(left + (side - 1) // 2, top + (side - 1) // 2, (float(mean[0]), float(mean[1])), side)


def simulate_image_hints(
    lab: Tensor,
    generator: torch.Generator | int,
    count: int | None = None,
    max_points: int | None = None,
    placement: str = "gaussian",
    global_probability: float = GLOBAL_HINT_PROBABILITY,
    gamut: str = "zhang",
) -> SimulatedHints:
    """Zhang et al. 2017's simulated user for one image with true Lab (3, H, W) (L in [0, 100], ab in about
    [-110, 110]).

    The number of points is ``count`` when given (evaluation's "N hints"), else geometric with p = 1/8 from 0
    (mean 7), capped at ``max_points`` if given. Each point's patch side is drawn from 1-9 px at 256 px
    scaled to the image; its place is ``"gaussian"`` around the centre (std H/4, W/4) or ``"uniform"``; its
    colour is the mean true ab in the patch. Then, with ``global_probability``, the truth's global hint.
    ``generator`` is a CPU ``torch.Generator`` (advanced by the draws) or a seed. With an exact ``count`` the
    points are drawn first, so the first k of N hints are the hints for k: curves over N are nested.
    """
    if lab.dim() != 3 or lab.shape[0] != 3:
        raise ValueError(f"expected Lab of shape (3, H, W), got {tuple(lab.shape)}")
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; choose one of {', '.join(PLACEMENTS)}")
    if count is not None and count < 0:
        raise ValueError(f"count {count} must be 0 or more hints")
    if not 0 <= global_probability <= 1:
        raise ValueError(f"global_probability {global_probability} must be in [0, 1]")
    generator = _generator(generator)
    points = count if count is not None else _draw_count(generator, max_points)
    local = tuple(_draw_point(lab[1:], generator, placement) for _ in range(points))
    given = global_probability > 0 and float(torch.rand((), generator=generator)) < global_probability
    return SimulatedHints(local, GlobalHint.from_lab(lab, gamut) if given else None)


def simulate_hints(
    lab: Tensor,
    generator: torch.Generator | int,
    count: int | None = None,
    max_points: int | None = None,
    placement: str = "gaussian",
    global_probability: float = GLOBAL_HINT_PROBABILITY,
    gamut: str = "zhang",
) -> list[SimulatedHints]:
    """``simulate_image_hints`` for each image of a batch of true Lab (N, 3, H, W), in order, from one generator
    (training: a generator seeded once per run or per step). Use ``hint_planes`` / ``batch_hint_planes`` and
    ``global_hint_tensors`` to turn the result into network inputs."""
    if lab.dim() != 4 or lab.shape[1] != 3:
        raise ValueError(f"expected Lab of shape (N, 3, H, W), got {tuple(lab.shape)}")
    generator = _generator(generator)
    return [
        simulate_image_hints(image, generator, count, max_points, placement, global_probability, gamut) for image in lab
    ]


def evaluation_hints(
    lab: Tensor, seed: int, index: int, count: int, placement: str = "gaussian"
) -> tuple[LocalHint, ...]:
    """The ``count`` simulated local hints of image ``index`` of an evaluation set, from true Lab (3, H, W).

    The generator is seeded from (seed, index) alone, so every model in one comparison gets the same hints
    for an image whatever the batching or order, and the hints for k < count are the first k of these.
    Global hints in evaluation are the caller's choice (``GlobalHint.from_lab`` of the truth, or a reference).
    """
    generator = torch.Generator().manual_seed(mix_seed(seed, index))
    return simulate_image_hints(lab, generator, count, placement=placement, global_probability=0).local
