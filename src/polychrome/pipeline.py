"""From a photo to colour at its own resolution: ``ColorizationPipeline``, the one assembly of
L -> network -> decode -> hint correction -> merge that the Python API, ``polychrome colorize``, both web
pages, ``evaluate``, ``compare`` and the studies' example grids all call, as a diffusers pipeline's
``__call__`` is the only place its steps are put together.

A job is three calls, each usable alone so that callers can keep what does not change:

- ``prepare``: a photo's L at full size and at the network's input size (and its alpha) — ``PreparedPhoto``;
- ``predict``: one batched forward pass with the hints and references, decoded at a temperature and
  corrected towards the hints as the model's card says — a ``Prediction`` per photo, which keeps the
  network's output so that ``redecode`` gives another temperature without a second forward pass;
- ``render``: the prediction's ab upsampled to the photo's size and joined with its own L, so colourisation
  only ever adds colour.

``colorize`` (also ``__call__``) does all three for one photo. The steps inside (the forward pass,
decoding, the hint inputs, the correction) are private: nobody assembles them a second way.

The model sees the photo's L resized to its input size; a full-resolution model (Levin et al. 2004) sees the
L it renders at. For photos the full-resolution work goes in horizontal stripes of about a megapixel, so a
50-megapixel photo needs its uint8 pixels, one float L plane and the uint8 result, not a dozen float copies
(benchmarks/colorize.py measures it). Library calls change no process-wide torch state: the flush of
subnormal floats that keeps CPU inference fast is set for the duration of a call and put back
(``flushing_subnormals``).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import queue
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional as F

from polychrome.color import lightness_ab_to_uint8, uint8_to_lightness
from polychrome.data import to_rgba
from polychrome.hints import GlobalHint, LocalHint, global_hint_vector, hint_planes, parse_hints
from polychrome.levin import (
    CAPACITANCE_PIXELS,
    LevinGrid,
    falling_decay,
    hinted_regions,
    levin_grid,
    levin_systems,
    propagate_residual,
)
from polychrome.models import Colorizer, LoadedModel, ModelCard, as_loaded, decode_output, upsample_ab

__all__ = [
    "ColorizationPipeline",
    "Prediction",
    "PreparedPhoto",
    "flushing_subnormals",
    "global_hint_of",
    "lightness_of",
    "merge",
    "to_hwc",
]

HINT_MODELS = "guided, levin, siggraph17-official:PATH, or a model built with local_hints=true"
REFERENCE_MODELS = "guided, or a model built with global_hints=true"
# Pixels per stripe of the merge: its dozen temporaries then stay in a core's cache (a 1024 x 683 display render
# took 20 against 33 ms in stripes of 2^16 rather than one of 2^20; benchmarks/render_layout.py), and a full-resolution
# photo never holds them whole. The stripes give the same bits as one pass.
STRIPE_PIXELS = 1 << 16


@contextmanager
def flushing_subnormals() -> Iterator[None]:
    """Subnormal floats flushed to zero inside the block, the caller's setting restored after it.

    Subnormals slow CPU arithmetic many times over and appear in a network's small activations; torch
    can only set the flag (per thread), not read it, so it is read by computing with a subnormal."""
    before = _flushing()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def _flushing() -> bool:
    return float(torch.tensor([1e-39]) * 1.0) == 0.0


@dataclass
class PreparedPhoto:
    """A photo as the network and the merge need it, made once by ``ColorizationPipeline.prepare``.

    ``lightness`` (1, H, W) is the L in [0, 100] the colours are rendered on; ``network_input``
    (1, 1, h, w) the L the network sees (its input size; for a full-resolution model ``lightness`` itself);
    ``size`` the (H, W) of the photo whose pixels hints are given in (the photo's own, also for a photo
    ``resized`` for display); ``alpha`` (H, W) uint8 or None."""

    lightness: Tensor
    network_input: Tensor
    size: tuple[int, int]
    alpha: np.ndarray | None = None


@dataclass
class Prediction:
    """What the network said about one photo and the colours decoded from it.

    ``output`` is the network's (Q, h, w) logits over the ab bins, or (2, h, w) ab for a regression model;
    ``ab`` (2, h, w) its decoding at ``temperature`` corrected towards the hints; ``hint_inputs`` the photo's
    hint planes at the network's size, kept so that ``redecode`` can correct again."""

    photo: PreparedPhoto
    output: Tensor
    ab: Tensor
    temperature: float
    hint_inputs: tuple[Tensor | None, ...] = ()


class ColorizationPipeline:
    """A model and its card on a device: the one way polychrome colours a photo (see the module docstring).

    ``temperature=None`` anywhere means the card's (chosen on validation data for the bundled model, else
    Zhang et al.'s ``DEFAULT_TEMPERATURE``); regression models ignore it. ``device=None`` keeps the model
    where it is. A bare network (no loader) gets ``card_of_network``'s card.
    """

    def __init__(self, model: LoadedModel | Colorizer, device: str | torch.device | None = "cpu", name: str = ""):
        self.model = as_loaded(model)
        self.device = _device_of(self.model) if device is None else torch.device(device)
        # On the CPU the weights go channels-last: oneDNN's convolutions then skip a reorder per layer (the guided
        # network's pass 1.37x faster, the automatic model's 1.05-1.16x; benchmarks/render_layout.py). Every path
        # runs the network through here, so the command line, the API, the page and evaluation stay identical.
        self.model.to(self.device).eval()
        if self.device.type == "cpu":
            self.model.to(memory_format=torch.channels_last)
        self.name = name
        self._corrections: _CorrectionThread | None = None

    def interactive(self) -> ColorizationPipeline:
        """Readies this pipeline for a person's clicks (the guided page's server): the hint correction's sparse
        factors are made, kept and freed on one long-lived thread, which factorises the whole grid the next click
        will need while the person chooses it (``_CorrectionThread``). The pixels are the same as without it;
        only when the work is done changes. Returns the pipeline."""
        if self.card.hint_propagation == "levin" and self._corrections is None:
            self._corrections = _CorrectionThread()
        return self

    @property
    def card(self) -> ModelCard:
        return self.model.card

    @property
    def input_size(self) -> int:
        return self.card.input_size

    @property
    def temperature(self) -> float:
        return self.card.temperature

    # ------------------------------------------------------------------------------------------ the job

    def __call__(self, image, temperature: float | None = None, hints=None, reference=None) -> np.ndarray:
        return self.colorize(image, temperature, hints, reference)

    def colorize(self, image, temperature: float | None = None, hints=None, reference=None) -> np.ndarray:
        """A PIL image or an (H, W) / (H, W, 3) uint8 array -> the colourised (H, W, 3) uint8 array.

        ``hints``: colour clicks for a model that takes them, as ``[(x, y, (r, g, b)), ...]`` (x, y in the
        photo's pixels from the top left; an optional fourth item is the patch side), dicts
        ``{"x": .., "y": .., "rgb": [r, g, b]}`` or ``LocalHint``s (see ``polychrome.hints.parse_hints``).
        ``reference``: a photo (path, PIL image or uint8 array) or ``GlobalHint`` whose colour distribution
        steers a model that takes global hints. A model that takes neither refuses them in one line.
        A colour photo is re-colourised from its own L."""
        rgb = _as_rgb(image)
        self.check_hints(bool(hints), reference is not None)
        local = parse_hints(hints, rgb.shape[:2]) if hints else []
        global_hint = None if reference is None else global_hint_of(reference)
        with flushing_subnormals():
            photo = self.prepare(rgb)
            prediction = self.predict([photo], [local], [global_hint], temperature)[0]
            return to_hwc(self.render(prediction))

    def colorize_images(
        self,
        images: list[Tensor],
        size: int | None = None,
        temperature: float | None = None,
        hints: Sequence[Sequence[LocalHint]] | None = None,
        references: Sequence[GlobalHint | None] | None = None,
    ) -> list[Tensor]:
        """uint8 RGB (3, H, W) images -> colourised uint8 RGB (3, H, W) on the CPU (``compare``'s and a
        study's example grids): ``colorize`` for a batch, seen at ``size`` (default: the card's)."""
        with flushing_subnormals():
            photos = [self.prepare(image, size=size) for image in images]
            return [self.render(p).cpu() for p in self.predict(photos, hints, references, temperature)]

    # ------------------------------------------------------------------------------------------ the steps

    def prepare(self, image, alpha: np.ndarray | None = None, size: int | None = None) -> PreparedPhoto:
        """A photo — a PIL image, an (H, W) / (H, W, 3) uint8 array, or a uint8 (3, H, W) tensor — with its
        ``alpha`` (a PIL image's own when not given), seen by the network at ``size`` (default: the card's)."""
        if isinstance(image, Tensor):
            chw = image
        else:
            if isinstance(image, Image.Image) and alpha is None:
                rgb, alpha = to_rgba(image)
            else:
                rgb = _as_rgb(image)
            chw = chw_view(rgb)
        return self.prepare_lightness(lightness_of(chw.to(self.device)), alpha, size)

    def prepare_lightness(
        self, lightness: Tensor, alpha: np.ndarray | None = None, size: int | None = None
    ) -> PreparedPhoto:
        """``prepare`` for a photo whose L (1, H, W) in [0, 100] is at hand (``evaluate`` reads Lab)."""
        if self.card.full_resolution:
            network_input = lightness[None]
        else:
            side = size or self.input_size
            network_input = _resized(lightness, (side, side))[None]
        return PreparedPhoto(lightness, network_input, side_of(lightness), alpha)

    def resized(self, photo: PreparedPhoto, shape: tuple[int, int]) -> PreparedPhoto:
        """The photo rendered at (h, w) (the guided page's display size): the network sees what it saw
        (a full-resolution model: the resized L), hints are still given in the photo's own pixels."""
        lightness = _resized(photo.lightness, shape)
        network_input = lightness[None] if self.card.full_resolution else photo.network_input
        alpha = None
        if photo.alpha is not None:
            alpha = np.asarray(Image.fromarray(photo.alpha).resize(shape[::-1], Image.Resampling.BILINEAR))
        return PreparedPhoto(lightness, network_input, photo.size, alpha)

    @torch.no_grad()
    def predict(
        self,
        photos: Sequence[PreparedPhoto],
        hints: Sequence[Sequence[LocalHint]] | None = None,
        references: Sequence[GlobalHint | None] | None = None,
        temperature: float | None = None,
    ) -> list[Prediction]:
        """One forward pass per size of network input (one for a batch of photos prepared alike), decoded at
        ``temperature`` and corrected towards the hints as the card's ``hint_propagation`` says.

        ``hints[i]`` are photo i's local hints in its own pixels, ``references[i]`` its global hint or None; a
        model that does not take what is given refuses it in one line."""
        hints = list(hints) if hints is not None else [[] for _ in photos]
        references = list(references) if references is not None else [None for _ in photos]
        self.check_hints(any(len(one) for one in hints), any(one is not None for one in references))
        temperature = self.temperature if temperature is None else temperature
        predictions: list[Prediction | None] = [None] * len(photos)
        with flushing_subnormals():
            for group in _groups(photos, batched=not self.card.full_resolution):
                chosen = [photos[i] for i in group]
                inputs = self._hint_inputs([hints[i] for i in group], [references[i] for i in group], chosen)
                lightness = torch.cat([photo.network_input for photo in chosen]).to(self.device)
                with self._factorise(lightness, inputs) as systems:  # on another core while the network runs
                    output = self._forward(lightness, inputs)
                    ab = self._correct(lightness, self._decode(output, temperature), inputs, systems)
                if self._corrections is not None and len(group) == 1:
                    self._corrections.ahead(lightness[0, 0], inputs[1] if len(inputs) > 1 else None, self.card)
                for row, index in enumerate(group):
                    kept = tuple(None if planes is None else planes[row : row + 1] for planes in inputs)
                    predictions[index] = Prediction(photos[index], output[row], ab[row], temperature, kept)
        return [prediction for prediction in predictions if prediction is not None]

    @torch.no_grad()
    def redecode(self, prediction: Prediction, temperature: float | None = None) -> Prediction:
        """The prediction decoded at another ``temperature`` (and corrected again): no forward pass."""
        temperature = self.temperature if temperature is None else temperature
        if temperature == prediction.temperature:
            return prediction
        lightness = prediction.photo.network_input.to(self.device)
        with flushing_subnormals():
            ab = self._decode(prediction.output[None], temperature)
            ab = self._correct(lightness, ab, prediction.hint_inputs)[0]
        return replace(prediction, ab=ab, temperature=temperature)

    @torch.no_grad()
    def render(self, prediction: Prediction, onto: PreparedPhoto | None = None) -> Tensor:
        """The colourised photo as uint8 RGB (3, H, W): the prediction's ab upsampled to the photo's L (or to
        ``onto``'s, the same photo at another size) and joined with it, on the L's device."""
        lightness = (onto or prediction.photo).lightness
        with flushing_subnormals():
            return merge(lightness, prediction.ab.to(lightness.device))

    def check_hints(self, hints: bool, reference: bool) -> None:
        """A one-line ValueError when hints or a reference are given to a model that does not take them."""
        name = self.name or self.card.name
        if hints and "ab_hints" not in self.card.inputs:
            raise ValueError(f"{name} takes no colour hints; models that do: {HINT_MODELS}")
        if reference and "global_hints" not in self.card.inputs:
            raise ValueError(f"{name} takes no reference photo; models that do: {REFERENCE_MODELS}")

    def _forward(self, lightness: Tensor, hints: tuple[Tensor | None, ...]) -> Tensor:
        """L (N, 1, h, w) in [0, 100] and the hint planes -> the network's float output, logits
        (N, Q, h', w') or ab (N, 2, h', w')."""
        hints = tuple(None if planes is None else planes.to(self.device) for planes in hints)
        return self.model(lightness, *hints).float()

    def _decode(self, output: Tensor, temperature: float) -> Tensor:
        """The network's output -> ab (N, 2, h, w): the annealed mean at ``temperature`` for a
        classification model, the ab itself for a regression model."""
        return decode_output(output, self.card.head, self.model.bins, temperature)

    def _hint_inputs(
        self,
        hints: Sequence[Sequence[LocalHint]],
        references: Sequence[GlobalHint | None],
        photos: Sequence[PreparedPhoto],
    ) -> tuple[Tensor | None, ...]:
        """The hint inputs for photos whose network inputs share one size (h, w): () without any, else
        (ab (N, 2, h, w), mask (N, 1, h, w)[, global (N, Q + 2)]), None for a kind not given."""
        given_local, given_global = any(len(one) for one in hints), any(one is not None for one in references)
        if not given_local and not given_global:
            return ()
        planes: list[Tensor | None] = [None, None]
        if given_local:
            shape = side_of(photos[0].network_input)
            pairs = [hint_planes(one, photo.size, shape) for one, photo in zip(hints, photos, strict=True)]
            planes = [torch.stack([ab for ab, _ in pairs]), torch.stack([mask for _, mask in pairs])]
        if given_global:
            planes.append(global_hint_vector(references))
        return tuple(planes)

    def _factorise(self, lightness: Tensor, hints: tuple[Tensor | None, ...]) -> _Factorising | nullcontext[None]:
        """The systems ``_correct`` solves (``polychrome.levin.levin_systems``), started on a worker thread for one
        photo (a person's click): they need L and where the hints are, not the prediction, and their LU (most of
        the correction's time) releases the GIL. Nothing (a context giving None) when nothing will be corrected, or
        for a batch, whose factors would all be alive at once (``propagate_residual`` makes them one at a time)."""
        if self.card.hint_propagation == "none" or len(hints) < 2 or hints[0] is None or hints[1] is None:
            return nullcontext()
        if lightness.shape[0] > 1:  # a batch (evaluate): factorised one photo at a time, as memory allows
            return nullcontext()
        card, mask, kept = self.card, hints[1], self._corrections
        grids = None if kept is None else kept.grid

        def factorise() -> list:
            with flushing_subnormals():  # as the calling thread: the LU's fill-in decays into subnormals
                return levin_systems(lightness, mask, card.hint_decay, card.hint_decay_falloff, grids=grids)

        return _Factorising(factorise, kept)

    def _correct(
        self, lightness: Tensor, ab: Tensor, hints: tuple[Tensor | None, ...], systems: _Factorising | None = None
    ) -> Tensor:
        """The decoded ab (N, 2, h, w) corrected towards the local hints (planes at L's size (N, 1, H, W)) as
        the card's ``hint_propagation`` says: with ``"levin"`` the residual at the hints spread along L at
        (H, W), with the card's ``hint_decay``, ``hint_decay_falloff`` and ``hint_prior_weight`` (``systems``:
        ``_factorise``'s, when started); as it is without local hints or any propagation."""
        if self.card.hint_propagation == "none" or len(hints) < 2 or hints[0] is None or hints[1] is None:
            return ab
        return propagate_residual(
            lightness,
            upsample_ab(ab, side_of(lightness)),
            hints[0].to(self.device),
            hints[1].to(self.device),
            decay=self.card.hint_decay,
            prior_weight=self.card.hint_prior_weight,
            falloff=self.card.hint_decay_falloff,
            systems=None if systems is None else systems.result(),
        )


class _Factorising:
    """``work()`` (``levin_systems``) on a thread of its own, started now, or on ``corrections``' thread;
    ``result()`` waits for it (its exception raised here). That thread keeps the result until the ``with`` block
    ends and drops it there: scipy's SuperLU books its memory per thread and a factorisation freed on another
    thread is never given back (one click's LU on a BSDS500 photo, about 11 MB, was kept for good: an evaluation
    with clicks grew by 120 MB a photo). A thread of its own is then joined, so none outlives a prediction: a
    DataLoader that forks its workers afterwards finds no thread of ours (a thread pool's idle workers made every
    later fork print an ignored SystemError from threading's after-fork hook). Whoever calls ``result()`` must
    not keep it past the block."""

    def __init__(self, work: Callable[[], Any], corrections: _CorrectionThread | None = None):
        self._outcome: tuple[bool, Any] = (False, None)
        self._made, self._done = threading.Event(), threading.Event()
        self._corrections = corrections
        if corrections is not None:
            corrections.submit(lambda: self._run(work))
            return
        self._thread = threading.Thread(target=self._run_and_drop, args=(work,), name="polychrome-levin", daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._outcome = (True, work())
        except BaseException as error:  # raised again in result(), on the caller's thread
            self._outcome = (False, error)
        self._made.set()

    def _run_and_drop(self, work: Callable[[], Any]) -> None:
        self._run(work)
        self._done.wait()
        self._drop()

    def _drop(self) -> None:
        self._outcome = (False, None)  # the factors' last reference dropped on the thread that made them

    def result(self) -> Any:
        self._made.wait()
        done, value = self._outcome
        if not done:
            raise value
        return value

    def __enter__(self) -> _Factorising:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._corrections is not None:
            self._corrections.submit(self._drop)  # after the work: the thread takes its jobs in order
            return
        self._done.set()
        self._thread.join()


class _CorrectionThread:
    """The thread an interactive pipeline's hint corrections run on (``ColorizationPipeline.interactive``): it
    makes every sparse factorisation, keeps the last ``GRIDS`` whole-grid factorisations (``LevinGrid``, keyed by
    the photo's L at the network's size and the decay) and frees them, all on itself, as SuperLU's per-thread
    memory requires. After each prediction it factorises the grid for one more hinted region (``ahead``: the
    decay falls with the regions) and solves it for the pixels already hinted, so the next click costs one solve
    for its own pixel (``levin.CAPACITANCE_PIXELS``) instead of an LU. Jobs run one at a time, in order; the thread
    ends, dropping its grids, after ``IDLE_SECONDS`` without one, and starts again with the next."""

    # The present decay, the next, and one left behind by a deleted hint. Each holds 14 MB of factors at 128 x 128
    # (benchmarks/levin_capacitance.py); the server as a whole held about 250 MB more while clicks came
    # (benchmarks/guided_memory.py), given back when the thread ends.
    GRIDS = 4
    IDLE_SECONDS = 60.0
    # How long after a prediction the next grid is started: once its photo has been sent and painted, so that the
    # LU does not take a core from the merge, the JPEG and the browser's decode of the answer the person waits for
    # (started at once, it made the page's clicks slower, not faster). A click sooner than this makes its grid itself.
    AHEAD_SECONDS = 0.2

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._stopping = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._grids: OrderedDict[tuple, LevinGrid] = OrderedDict()  # touched on the thread only

    def submit(self, job: Callable[[], None] | None) -> None:
        """Runs ``job`` on the thread after those before it; None ends the thread."""
        with self._lock:
            if self._stopping and job is not None:  # the interpreter is exiting
                return
            self._jobs.put(job)
            if self._thread is None and job is not None:
                self._thread = threading.Thread(target=self._serve, name="polychrome-corrections", daemon=True)
                self._thread.start()
                atexit.register(self._stop)

    def _stop(self) -> None:
        """Ends the thread before the interpreter does (a daemon thread still factorising at exit broke the
        interpreter's last flush of stdout)."""
        thread, self._stopping = self._thread, True
        if thread is not None:
            self.submit(None)
            thread.join()

    def _serve(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                job = None
            if job is None:
                with self._lock:
                    if self._stopping or self._jobs.empty():
                        self._grids.clear()
                        self._thread = None
                        atexit.unregister(self._stop)
                        return
                continue
            try:
                job()
            except Exception:  # a job's errors reach whoever waits on it; the thread must go on serving the others
                logging.getLogger(__name__).exception("a hint-correction job failed")

    def grid(self, luminance: np.ndarray, decay: float) -> LevinGrid:
        """The whole grid's factorisation for ``luminance`` (H, W) float64 and ``decay``, made unless kept;
        called on the thread only."""
        key = (luminance.shape, hashlib.blake2b(luminance.tobytes(), digest_size=16).digest(), decay)
        if key in self._grids:
            self._grids.move_to_end(key)
            return self._grids[key]
        grid = levin_grid(luminance, decay)
        self._grids[key] = grid
        while len(self._grids) > self.GRIDS:
            self._grids.popitem(last=False)
        return grid

    def ahead(self, lightness: Tensor, mask: Tensor | None, card: ModelCard) -> None:
        """Queues the grid the next click on this photo (L (H, W) at the network's size, ``mask`` the hint mask
        (1, 1, H, W) or None) will need, if it will need one."""
        hinted = 0 if mask is None else int((mask > 0).sum())
        regions = hinted_regions(mask[0, 0] > 0) if mask is not None and hinted else 0
        decay = falling_decay(card.hint_decay, card.hint_decay_falloff, regions + 1)
        if decay <= 0 or hinted >= CAPACITANCE_PIXELS:  # no grid then: the unhinted pixels' own LU
            return
        luminance = lightness.detach().cpu().to(torch.float64).numpy()
        fixed = np.empty(0, dtype=np.int64) if mask is None else np.flatnonzero(mask.cpu().numpy() > 0)

        def factorise() -> None:
            with flushing_subnormals(), suppress(Exception):  # the click itself will raise, if it must
                self.grid(luminance, decay).spread(fixed)  # the clicks made so far: the next adds one

        timer = threading.Timer(self.AHEAD_SECONDS, self.submit, args=(factorise,))
        timer.daemon = True
        timer.start()


def _groups(photos: Sequence[PreparedPhoto], batched: bool) -> list[list[int]]:
    """Indices of photos whose network inputs share a size, each group one forward pass (one photo a pass
    when not ``batched``: a full-resolution solve is per photo)."""
    if not batched:
        return [[index] for index in range(len(photos))]
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, photo in enumerate(photos):
        groups.setdefault(tuple(photo.network_input.shape), []).append(index)
    return list(groups.values())


def side_of(plane: Tensor) -> tuple[int, int]:
    """The (H, W) of an image or plane (..., H, W)."""
    return int(plane.shape[-2]), int(plane.shape[-1])


def _resized(plane: Tensor, shape: tuple[int, int]) -> Tensor:
    """L (1, H, W) resized (bilinear, antialiased) to (h, w): (1, h, w); as it is at that size already."""
    if side_of(plane) == tuple(shape):
        return plane
    return F.interpolate(plane[None], size=shape, mode="bilinear", antialias=True, align_corners=False)[0]


def global_hint_of(reference) -> GlobalHint:
    """A reference for global hints: a ``GlobalHint`` as it is, a photo file's path, a PIL image or a uint8
    array (H, W, 3) or (H, W)."""
    if isinstance(reference, GlobalHint):
        return reference
    if isinstance(reference, (str, Path)):
        return GlobalHint.from_file(reference)
    return GlobalHint.from_rgb(chw_view(_as_rgb(reference)))


def _stripes(height: int, width: int):
    rows = max(1, STRIPE_PIXELS // max(1, width))
    for top in range(0, height, rows):
        yield top, min(height, top + rows)


def lightness_of(image: Tensor) -> Tensor:
    """uint8 RGB (3, H, W) -> L (1, H, W) in [0, 100], converted stripe by stripe."""
    out = torch.empty((1, *image.shape[-2:]), device=image.device)
    for top, bottom in _stripes(*image.shape[-2:]):
        out[:, top:bottom] = uint8_to_lightness(image[None, :, top:bottom])[0]
    return out


def _bilinear_rows(ab: Tensor, height: int, top: int, bottom: int) -> Tensor:
    """Rows top..bottom of ab (2, h, W) upsampled bilinearly to ``height`` rows, as F.interpolate
    (align_corners=False) computes them for the whole image."""
    h = ab.shape[1]
    source = ((torch.arange(top, bottom, device=ab.device, dtype=torch.float32) + 0.5) * (h / height) - 0.5).clamp(
        min=0
    )
    above = source.floor().long().clamp(max=h - 1)
    below = (above + 1).clamp(max=h - 1)
    weight = (source - above)[None, :, None]
    return ab.index_select(1, above) * (1 - weight) + ab.index_select(1, below) * weight


def merge(lightness: Tensor, ab: Tensor) -> Tensor:
    """The image's own L (1, H, W) joined with ab (2, h, w) upsampled bilinearly to (H, W): uint8 RGB (3, H, W)."""
    height, width = lightness.shape[-2:]
    ab = F.interpolate(ab[None].float(), size=(ab.shape[-2], width), mode="bilinear", align_corners=False)[
        0
    ]  # (2, h, W)
    out = torch.empty((3, height, width), dtype=torch.uint8, device=lightness.device)
    for top, bottom in _stripes(height, width):
        rows = _bilinear_rows(ab, height, top, bottom)
        out[:, top:bottom] = lightness_ab_to_uint8(lightness[None, :, top:bottom], rows[None])[0]
    return out


def _device_of(model: nn.Module) -> torch.device:
    """Where a module's tensors are (the CPU for one without any, such as an ONNX model's wrapper)."""
    return next(iter(model.buffers()), torch.empty(0)).device


def chw_view(image: np.ndarray) -> Tensor:
    """An (H, W, 3) array as a (3, H, W) tensor sharing its memory. Read-only arrays (``np.asarray`` of a
    PIL image) are fine: nothing here writes into its input, so PyTorch's warning about them is silenced
    rather than paid for with a copy of a possibly 50-megapixel photo."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(image).permute(2, 0, 1)


def to_hwc(image: Tensor) -> np.ndarray:
    """A rendered uint8 (3, H, W) -> the (H, W, 3) array on the CPU that files, PNG and the API take."""
    return image.permute(1, 2, 0).cpu().numpy()


def _as_rgb(image) -> np.ndarray:
    """A PIL image or an (H, W) / (H, W, 3) uint8 array -> a contiguous (H, W, 3) uint8 array."""
    if isinstance(image, Image.Image):
        return to_rgba(image)[0]
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"expected a uint8 array of shape (H, W) or (H, W, 3), got {array.dtype} {array.shape}")
    return np.ascontiguousarray(np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array)
