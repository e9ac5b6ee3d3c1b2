"""A simulated person who clicks where the colour is most wrong: guided colourisation measured as interactive
segmentation measures its clicks.

Zhang et al. 2017's simulated hints (``polychrome.hints.simulate_hints``) fall at random over the photo, so a
correction that reaches far from a click looks good under them. A person instead clicks a few times, each
where the colour is most wrong. This module simulates such a person with the protocol interactive
segmentation uses to count clicks (Xu et al. 2016, "Deep Interactive Object Selection"; the NoC protocol as
RITM, Sofiiuk et al. 2022, implements it):

- ``"errors"``: each next click goes to the point deepest inside (largest Euclidean distance to the region's
  edge, the photo's border counting as an edge, as RITM pads its error mask) the largest 4-connected region
  whose ab error exceeds ``ERROR_THRESHOLD`` units; ties go to the first in row-major order. The click is one
  pixel with the truth's colour there. The model recolours with all the clicks so far, and the person looks
  again, so every model gets the clicks its own errors call for. Nothing wrong left: the person stops.
- ``"segments"``: one click per human segment of BSDS500 (the first annotator's segmentation), largest
  segment first, each at its deepest point, with the truth's colour there: the same clicks for every model.

Measures after each click (``run_person``): PSNR (uint8 RGB of the photo's own L with the predicted ab,
data range 255, as ``evaluate`` takes it), mean ab error, and harm: the share of pixels whose ab error grows
by more than ``HARM_GROWTH`` units with that click (a click should fix its region and harm nothing else).
``summarize_runs`` averages them over photos and counts the clicks needed to reach a PSNR target (NoC, as
interactive segmentation reports NoC@85/90 IoU), and the photos the first click makes worse. Nothing here is
random: the person's clicks follow from the truth and the model's own predictions alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from polychrome.color import lab_to_uint8
from polychrome.hints import GlobalHint, LocalHint
from polychrome.metrics.functional import psnr
from polychrome.models import upsample_ab
from polychrome.pipeline import ColorizationPipeline, PreparedPhoto

__all__ = [
    "CLICK_COUNTS",
    "ClickProtocol",
    "PersonRun",
    "click_at",
    "click_table",
    "deepest_point",
    "largest_wrong_region",
    "next_click",
    "run_person",
    "segment_clicks",
    "summarize_runs",
]

PERSONS = ("errors", "segments")
# Xu et al. 2016 / RITM click where the mask is wrong; a colour is "wrong" here beyond 15 ab units, about
# three just-noticeable differences (a JND is about 2.3 in CIE Lab, Sharma 2003), well below a change of hue.
ERROR_THRESHOLD = 15.0
# A click harms a pixel when it raises the pixel's ab error by more than 10 units.
HARM_GROWTH = 10.0
# The click counts the tables report, as interactive segmentation reports its curves.
CLICK_COUNTS = (1, 2, 3, 5, 10, 20)
# PSNR targets (dB) whose number of clicks (NoC) is counted, as NoC@85 and NoC@90 IoU are.
PSNR_TARGETS = (25.0, 28.0)


# ---------------------------------------------------------------------------------------------- the clicks


def deepest_point(mask: np.ndarray) -> tuple[int, int]:
    """The (x, y) of the pixel of a non-empty boolean mask (H, W) furthest (Euclidean) from outside it, the
    photo's border counting as outside (RITM pads the mask with zeros); ties go to the first pixel in row-major
    order (smallest y, then smallest x).

    Example: ``deepest_point(np.ones((3, 5), bool))`` is ``(1, 1)`` (row 1 is 2 from the border; the first
    of the three such pixels in row-major order)."""
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"expected a non-empty (H, W) mask, got shape {mask.shape} with {int(mask.sum())} pixels set")
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = divmod(int(np.argmax(depth)), mask.shape[1])  # argmax: the first maximum in row-major order
    return x, y


def largest_wrong_region(error: np.ndarray, threshold: float = ERROR_THRESHOLD) -> np.ndarray | None:
    """The largest 4-connected region of pixels whose error (H, W) exceeds ``threshold``, as a boolean mask,
    or None when no pixel does. Of regions of equal size, the one whose first pixel comes first in row-major
    order (``scipy.ndimage.label`` numbers them in that order)."""
    labels, count = ndimage.label(error > threshold)  # the default structure in 2-D: 4-connectivity
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    return labels == int(np.argmax(sizes)) + 1


def click_at(x: int, y: int, truth_lab: Tensor, truth_rgb: Tensor | None = None) -> LocalHint:
    """A one-pixel click at (x, y) with the truth's colour there: its ab from ``truth_lab`` (3, H, W) (L in
    [0, 100], ab in about [-110, 110]), its rgb from ``truth_rgb`` (3, H, W) uint8 when given."""
    a, b = (float(value) for value in truth_lab[1:, y, x])
    rgb = None if truth_rgb is None else tuple(int(value) for value in truth_rgb[:, y, x])
    return LocalHint(x, y, (a, b), 1, rgb)  # type: ignore[arg-type]


def next_click(
    error: Tensor | np.ndarray,
    truth_lab: Tensor,
    truth_rgb: Tensor | None = None,
    threshold: float = ERROR_THRESHOLD,
) -> LocalHint | None:
    """The errors person's next click: at the deepest point of the largest 4-connected region whose ab error
    (H, W) (Lab units) exceeds ``threshold``, one pixel with the truth's colour there (``click_at``); None
    when no pixel is that wrong."""
    values = error.detach().cpu().numpy() if isinstance(error, Tensor) else np.asarray(error)
    if values.shape != tuple(truth_lab.shape[-2:]):
        raise ValueError(f"error map {values.shape} and truth {tuple(truth_lab.shape)} differ in size")
    region = largest_wrong_region(values, threshold)
    return None if region is None else click_at(*deepest_point(region), truth_lab, truth_rgb)


def segment_clicks(
    segments: Tensor | np.ndarray, truth_lab: Tensor, truth_rgb: Tensor | None = None
) -> list[LocalHint]:
    """The segments person's clicks: one per segment of a label map (H, W) (BSDS500's human segmentation),
    largest segment first (equal sizes: smaller label first), each at its deepest point (``deepest_point``)
    with the truth's colour there."""
    labels = segments.cpu().numpy() if isinstance(segments, Tensor) else np.asarray(segments)
    if labels.shape != tuple(truth_lab.shape[-2:]):
        raise ValueError(f"segmentation {labels.shape} and truth {tuple(truth_lab.shape)} differ in size")
    values, sizes = np.unique(labels, return_counts=True)
    order = sorted(range(len(values)), key=lambda k: (-sizes[k], values[k]))
    return [click_at(*deepest_point(labels == values[k]), truth_lab, truth_rgb) for k in order]


# ---------------------------------------------------------------------------------------------- one photo


@dataclass(frozen=True)
class PersonRun:
    """What a person did to one photo and how the colours fared.

    ``clicks``: the clicks in order (fewer than asked when nothing was left to fix, or the segments ran out).
    ``psnr``, ``mean_ab_error``: after 0, 1, ..., N clicks (N + 1 values; after the person stopped, the last
    repeats). ``harm``: for clicks 1..N (N values), the share of pixels whose ab error grew by more than
    ``HARM_GROWTH`` with that click (0 after the person stopped). ``pixels``: the photo's pixel count."""

    clicks: tuple[LocalHint, ...]
    psnr: tuple[float, ...]
    mean_ab_error: tuple[float, ...]
    harm: tuple[float, ...]
    pixels: int


def harm(before: Tensor, after: Tensor, growth: float = HARM_GROWTH) -> float:
    """The share of pixels whose ab error (H, W) grew by more than ``growth`` units from ``before`` to ``after``."""
    return float(((after - before) > growth).double().mean())


def _colours(
    pipeline: ColorizationPipeline,
    photo: PreparedPhoto,
    clicks: Sequence[LocalHint],
    reference: GlobalHint | None,
    temperature: float | None,
    truth_rgb: Tensor,
    truth_lab: Tensor,
) -> tuple[Tensor, float]:
    """The ab error (H, W) and PSNR of the pipeline's colours with these clicks."""
    prediction = pipeline.predict([photo], [list(clicks)], [reference], temperature)[0]
    ab = upsample_ab(prediction.ab[None], photo.size)[0].to(truth_lab.device)
    error = torch.linalg.vector_norm(ab - truth_lab[1:], dim=0)
    rgb = lab_to_uint8(torch.cat([truth_lab[:1], ab])[None])
    return error, float(psnr(rgb, truth_rgb[None])[0])


def _planned_or_next(
    planned: list[LocalHint] | None, k: int, error: Tensor, truth_lab: Tensor, truth_rgb: Tensor
) -> LocalHint | None:
    """Click k + 1: the planned one (the segments person; None when they ran out), else ``next_click``."""
    if planned is None:
        return next_click(error, truth_lab, truth_rgb)
    return planned[k] if k < len(planned) else None


def run_person(
    pipeline: ColorizationPipeline,
    photo: PreparedPhoto,
    truth_rgb: Tensor,
    truth_lab: Tensor,
    clicks: int,
    person: str = "errors",
    segments: Tensor | None = None,
    reference: GlobalHint | None = None,
    temperature: float | None = None,
) -> PersonRun:
    """A person's ``clicks`` clicks on one photo, the pipeline recolouring after each with all clicks so far.

    ``photo``: the photo prepared once (``pipeline.prepare`` / ``prepare_lightness``); ``truth_rgb`` its
    uint8 RGB (3, H, W), ``truth_lab`` its Lab (3, H, W) (L in [0, 100], ab in about [-110, 110]).
    ``person``: ``"errors"`` (``next_click`` on the current error) or ``"segments"`` (``segment_clicks`` of
    ``segments``, a label map (H, W)). ``reference``: a global hint given with every prediction, or None."""
    if person not in PERSONS:
        raise ValueError(f"--person {person!r}: choose one of {', '.join(PERSONS)}")
    planned = None
    if person == "segments":
        if segments is None:
            raise ValueError("the segments person needs the photo's segmentation (segments=...)")
        planned = segment_clicks(segments, truth_lab, truth_rgb)
    error, value = _colours(pipeline, photo, [], reference, temperature, truth_rgb, truth_lab)
    given: list[LocalHint] = []
    psnrs, errors, harms = [value], [float(error.double().mean())], []
    for k in range(clicks):
        click = _planned_or_next(planned, k, error, truth_lab, truth_rgb)
        if click is None:  # nothing left to fix: the colours stay as they are
            psnrs.append(psnrs[-1])
            errors.append(errors[-1])
            harms.append(0.0)
            continue
        given.append(click)
        after, value = _colours(pipeline, photo, given, reference, temperature, truth_rgb, truth_lab)
        harms.append(harm(error, after))
        error = after
        psnrs.append(value)
        errors.append(float(error.double().mean()))
    return PersonRun(tuple(given), tuple(psnrs), tuple(errors), tuple(harms), int(error.numel()))


# ---------------------------------------------------------------------------------------------- many photos


@dataclass(frozen=True)
class ClickProtocol:
    """The clicks of an evaluation: ``clicks`` per photo by the simulated ``person`` (``"errors"`` or
    ``"segments"``; see the module docstring). 0 clicks: none."""

    clicks: int = 0
    person: str = "errors"

    def __post_init__(self) -> None:
        if self.clicks < 0:
            raise ValueError(f"--clicks {self.clicks}: give the number of clicks per photo, 0 or more")
        if self.person not in PERSONS:
            raise ValueError(f"--person {self.person!r}: choose one of {', '.join(PERSONS)}")

    def record(self) -> dict:
        """The settings, as the results' ``clicks["protocol"]``."""
        how = {
            "errors": f"at the deepest point of the largest 4-connected region with ab error > {ERROR_THRESHOLD:g}",
            "segments": "one per human segment (BSDS500, first annotator), largest first, at its deepest point",
        }
        return {
            "clicks": self.clicks,
            "person": self.person,
            "click": how[self.person] + "; one pixel with the truth's colour; recoloured with all clicks so far",
            "error_threshold": ERROR_THRESHOLD,
            "harm_growth": HARM_GROWTH,
        }


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def reached(psnrs: Sequence[float], target: float) -> int | None:
    """The number of clicks after which the PSNR first reaches ``target`` (0: before any), None if never."""
    return next((k for k, value in enumerate(psnrs) if value >= target), None)


def summarize_runs(runs: dict[int, PersonRun], protocol: ClickProtocol) -> dict:
    """The click curves of an evaluation from each photo's run (keyed by its index in the dataset).

    ``curve``: for 0..N clicks, the mean over photos of PSNR, the mean ab error over all pixels, and the
    mean over photos of harm (None at 0 clicks). ``harm_first`` / ``harm_first_three``: harm of click 1 / the
    mean of clicks 1-3. ``noc``: per PSNR target, the mean number of clicks to reach it (a photo that never
    does counts N, as NoC caps at the click budget) and how many photos never did. ``worse_after_first_click``:
    photos whose PSNR the first click lowered. ``per_image``: each photo's PSNR and harm curves and clicks."""
    n, photos = protocol.clicks, list(runs.values())
    pixels = np.array([run.pixels for run in photos], dtype=np.float64)
    curve = []
    for k in range(n + 1):
        errors = np.array([run.mean_ab_error[k] for run in photos])
        curve.append(
            {
                "clicks": k,
                "psnr": _mean([run.psnr[k] for run in photos]),
                "mean_ab_error": float((errors * pixels).sum() / pixels.sum()) if photos else None,
                "harm": _mean([run.harm[k - 1] for run in photos]) if k else None,
            }
        )
    noc = {}
    for target in PSNR_TARGETS:
        counts = [reached(run.psnr, target) for run in photos]
        noc[f"{target:g}"] = {
            "mean_clicks": _mean([n if count is None else count for count in counts]),
            "not_reached": sum(count is None for count in counts),
        }
    return {
        "protocol": protocol.record(),
        "photos": len(photos),
        "curve": curve,
        "harm_first": curve[1]["harm"] if n else None,
        "harm_first_three": _mean([run.harm[k] for run in photos for k in range(min(3, n))]),
        "noc": noc,
        "worse_after_first_click": sum(run.psnr[1] < run.psnr[0] for run in photos) if n else None,
        "per_image": {
            index: {
                "psnr": list(run.psnr),
                "mean_ab_error": list(run.mean_ab_error),
                "harm": list(run.harm),
                "clicks": [[click.x, click.y] for click in run.clicks],
            }
            for index, run in runs.items()
        },
    }


def _format(value: float | None, spec: str) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def click_table(results: Sequence[dict]) -> str:
    """A Markdown table of the click curves of the results that have them (``results[i]["clicks"]``): PSNR
    (dB) after 0 and each of ``CLICK_COUNTS`` up to N clicks, the mean ab error after N, harm (%) of the
    first click and of clicks 1-3, NoC per PSNR target, and the photos the first click made worse."""
    rows = [result for result in results if result.get("clicks")]
    if not rows:
        return ""
    n = rows[0]["clicks"]["protocol"]["clicks"]
    counts = [0, *(k for k in CLICK_COUNTS if k < n), n] if n else [0]
    targets = [f"{target:g}" for target in PSNR_TARGETS]
    head = [f"PSNR {k}" for k in counts] + [f"ab error {n}", "harm 1 (%)", "harm 1-3 (%)"]
    head += [f"NoC@{target} dB" for target in targets] + ["worse after 1"]
    lines = ["| model | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for result in rows:
        clicks = result["clicks"]
        curve = clicks["curve"]
        cells = [_format(curve[k]["psnr"], ".2f") for k in counts] + [_format(curve[n]["mean_ab_error"], ".2f")]
        cells += [
            _format(None if v is None else 100 * v, ".1f") for v in (clicks["harm_first"], clicks["harm_first_three"])
        ]
        cells += [
            f"{_format(clicks['noc'][t]['mean_clicks'], '.2f')} ({clicks['noc'][t]['not_reached']} never)"
            for t in targets
        ]
        worse = clicks["worse_after_first_click"]
        cells.append("" if worse is None else f"{worse} of {clicks['photos']}")
        lines.append(f"| {result['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
