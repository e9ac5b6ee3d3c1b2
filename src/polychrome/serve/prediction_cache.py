"""The models behind the web page and a cache of their predictions, with memory bounded however many requests arrive.

Each model is loaded once, on first use, and shared. Every job (decoding the upload, the forward pass, rendering
and PNG encoding) runs in a worker thread, never on the event loop, through one of two lanes (``Lanes``), each a
``Gate`` that runs one job at a time: the fast lane for small work (a photo of up to ``FAST_PIXELS``, a guided
page's display render by a network) and the slow lane for slow work (Levin's optimisation at any size, anything
at the full resolution of a larger photo). A 25-second Levin download then delays nobody's plain colourisation,
and at most two photos' working sets are alive. Waiting requests hold only their upload (Starlette spools it to
disk above 1 MiB) and no thread; one that would wait too long (its lane's queue full, or the expected wait above
the queue timeout) is refused at once with 503 and Retry-After, and one still waiting at the timeout then, so a
crowd gets a quick "try again" rather than a pile of stalled connections. Predictions are kept in a byte-bounded
LRU (``PredictionCache``), so the temperature slider and the distribution plot reuse one forward pass. The guided
page's uploads (``polychrome.serve.guided.GuidedEntry``: the photo's L at full, display and network size, and
what its hints and clicks add later) are kept in the same cache, counted at the size they grow to.
"""

from __future__ import annotations

import io
import math
import secrets
import shutil
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeVar

import anyio
import numpy as np
from PIL import Image
from torch import Tensor

import polychrome
from polychrome.data import load_rgba, write_png
from polychrome.pipeline import ColorizationPipeline, Prediction, to_hwc

T = TypeVar("T")
K = TypeVar("K", bound="Cached")
CACHE_BYTES = 512 * 2**20  # a 50-megapixel photo's prediction (mostly its float L) is about 250 MB
# Above this many pixels a photo's work goes to the slow lane: the full-resolution merge and PNG of a 4-megapixel
# photo take about a second on 2 CPU cores, a 12-megapixel phone photo's several.
FAST_PIXELS = 4_000_000
FAST_WAITING = 32  # requests that may wait for the fast lane (benchmarks/serve_load.py runs 16 clients at once)
SLOW_WAITING = 2  # and for the slow lane, whose jobs take up to a minute: more would only time out
SMOOTHING = 0.5  # weight of the latest job in a lane's moving average of job seconds


class Models:
    """The models the server offers by name, each loaded with ``polychrome.load_colorizer`` exactly once."""

    def __init__(self, names: list[str]):
        if not names:
            raise ValueError("models must name at least one model, e.g. ['default', 'gray']")
        self.names = list(dict.fromkeys(names))
        self._loaded: dict[str, ColorizationPipeline] = {}
        self._lock = threading.Lock()  # two first requests for one model must not load it twice

    def get(self, name: str) -> ColorizationPipeline:
        """The loaded model; slow the first time, so call it from a worker thread, never the event loop."""
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = polychrome.load_colorizer(name).interactive()  # a person clicks
            return self._loaded[name]

    def describe(self) -> list[dict]:
        """What the page and API clients need to know about each model (loads every model)."""
        return [describe(name, self.get(name)) for name in self.names]


def describe(name: str, pipeline: ColorizationPipeline) -> dict:
    card = pipeline.card
    return {
        "name": name,
        "head": card.head,
        "input_size": card.input_size,
        "temperature": card.temperature if card.head == "classification" else None,
    }


class Busy(Exception):
    """A lane cannot take a job soon enough; the client should retry after ``retry_after`` seconds (503)."""

    def __init__(self, reason: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"the server is busy: {reason}; try again in about {retry_after} s")


class Gate:
    """One lane: runs jobs one at a time in a worker thread, first come, first served; waiters hold no thread.

    A job is refused at once (``Busy``) when ``max_waiting`` jobs already wait, or when its expected wait is
    above ``timeout`` seconds; one admitted that still cannot start within ``timeout`` (the guess was short) is
    refused then. The expected wait is the running job's expected remainder plus one job per waiter, a job being
    guessed at ``typical``, the moving average of the lane's recent jobs (``SMOOTHING``). A running job already
    past that (or the lane's first, with no average yet) is guessed to need as long again as it has run, and
    without an average each waiter as long as that. The expected wait is also the Retry-After given (at least a
    second). The guess is rough, as a lane mixes jobs of different sizes; it only decides how soon a crowd hears
    "try again", never what runs.
    """

    def __init__(self, name: str, timeout: float, max_waiting: int):
        self.name, self.timeout, self.max_waiting = name, timeout, max_waiting
        self.slot = anyio.Semaphore(1)
        self.waiting = 0  # jobs admitted and waiting for the slot
        self.started: float | None = None  # time.monotonic() when the running job started
        self.typical = 0.0  # seconds a job takes: the moving average of the jobs done (0 before the first)

    def expected_wait(self) -> float:
        """Seconds until a job admitted now would start, as far as ``typical`` can tell."""
        if self.started is None:
            return self.waiting * self.typical
        elapsed = time.monotonic() - self.started
        remaining = self.typical - elapsed if elapsed < self.typical else elapsed
        return remaining + self.waiting * (self.typical or elapsed)

    def busy(self, reason: str) -> Busy:
        return Busy(f"the {self.name} {reason}", max(1, math.ceil(self.expected_wait())))

    async def run(self, job: Callable[..., T], *args) -> T:
        if self.waiting >= self.max_waiting:
            raise self.busy(f"has {self.waiting} request{'s' * (self.waiting != 1)} waiting already")
        if (expected := self.expected_wait()) > self.timeout:
            raise self.busy(f"would keep you waiting about {expected:.0f} s, above the limit of {self.timeout:g} s")
        self.waiting += 1
        acquired = False
        try:
            with anyio.move_on_after(self.timeout):
                await self.slot.acquire()
                acquired = True
        finally:
            self.waiting -= 1
        if not acquired:
            raise self.busy(f"could not start this within the {self.timeout:g} s a request may wait")
        self.started = time.monotonic()
        try:
            # Not abandoned on cancellation: the slot is freed only once the thread has really finished.
            return await anyio.to_thread.run_sync(job, *args)
        finally:
            seconds = time.monotonic() - self.started
            self.typical = seconds if self.typical == 0 else (1 - SMOOTHING) * self.typical + SMOOTHING * seconds
            self.started = None
            self.slot.release()


class Lanes:
    """The server's two gates, so that slow work never holds up small work: ``fast`` for work on at most
    ``fast_pixels`` pixels, ``slow`` for Levin's optimisation (a sparse solve at the photo's own resolution, any
    size) and anything on more pixels. Each runs one job at a time, so at most two run at once: on a 2-core
    machine the fast lane's torch threads share the cores with the slow lane's job (mostly single-threaded
    SciPy for Levin), which slows each a little rather than one waiting for the other."""

    def __init__(self, timeout: float, fast_pixels: int = FAST_PIXELS):
        self.fast = Gate("lane for small photos", timeout, FAST_WAITING)
        self.slow = Gate("lane for Levin's optimisation and large photos", timeout, SLOW_WAITING)
        self.fast_pixels = fast_pixels

    def choose(self, pixels: int | None, solve: bool = False) -> Gate:
        """The lane for a job on ``pixels`` pixels (None: unknown, an unreadable upload the job will refuse at
        once), ``solve`` when it is Levin's optimisation."""
        return self.slow if solve or (pixels is not None and pixels > self.fast_pixels) else self.fast


def upload_pixels(file: BinaryIO) -> int | None:
    """The pixels an upload's header declares, to choose its lane before it is decoded (a few ms; call it from a
    worker thread); None when the header cannot be read: the job's own reader then says why."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning: read_upload decides
            with Image.open(file) as image:
                width, height = image.size
    except Exception:
        return None
    finally:
        file.seek(0)
    return width * height


@dataclass
class Entry:
    """One colourised upload: which model (its name and itself) and what it predicted (the prepared photo,
    its alpha included, and the network's output)."""

    model: str
    pipeline: ColorizationPipeline
    prediction: Prediction

    @property
    def nbytes(self) -> int:
        alpha = self.prediction.photo.alpha
        return storage_bytes(prediction_tensors(self.prediction)) + (0 if alpha is None else alpha.nbytes)


def prediction_tensors(prediction: Prediction) -> list[Tensor]:
    """Every tensor a kept prediction holds: its photo's planes, the network's output, the decoded ab and the
    hint planes (for ``storage_bytes``)."""
    photo = prediction.photo
    hints = [planes for planes in prediction.hint_inputs if planes is not None]
    return [photo.lightness, photo.network_input, prediction.output, prediction.ab, *hints]


def storage_bytes(tensors: list[Tensor]) -> int:
    """The bytes the tensors hold, each storage once (a view, such as a full-resolution model's network input
    of the photo's own L, adds nothing)."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


class Cached(Protocol):
    """What the cache keeps: anything that says how many bytes it holds."""

    @property
    def nbytes(self) -> int: ...


class PredictionCache:
    """Recent predictions by random token; the least recently used go first once all of them hold more
    than ``max_bytes`` (the newest is always kept). Used from the event loop only, so it needs no lock.
    It keeps entries of more than one kind (an ``Entry``, a guided page's ``GuidedEntry``); ``get`` asks
    for one kind, so a token of the other kind is not found.

    An entry is measured (``nbytes``) when it is put, and again by ``update`` after a job that may have grown it
    (a guided entry's palette logits and latest prediction come after its upload), so the bound counts what the
    entries hold now, not what they held when they arrived."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[Cached, int]] = OrderedDict()  # each with its size when last measured
        self.nbytes = 0  # the sum of those sizes

    def put(self, entry: Cached) -> str:
        token = secrets.token_urlsafe(16)  # unguessable: one visitor cannot read another's photo
        self._entries[token] = entry, 0
        self.update(token)
        return token

    def update(self, token: str) -> None:
        """Measure the entry under ``token`` again (after a job that may have grown it), make it the most
        recently used, and let the least recently used others go while the cache holds more than ``max_bytes``.
        A token no longer kept is ignored."""
        if token not in self._entries:
            return
        entry, before = self._entries[token]
        size = entry.nbytes
        self._entries[token] = entry, size
        self._entries.move_to_end(token)
        self.nbytes += size - before
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            self.nbytes -= self._entries.popitem(last=False)[1][1]

    def get(self, token: str, kind: type[K]) -> K | None:
        """The entry kept under ``token`` if it is a ``kind``, else None."""
        entry = self._entries.get(token, (None, 0))[0]
        if not isinstance(entry, kind):
            return None
        self._entries.move_to_end(token)
        return entry


def read_upload(file: BinaryIO, max_pixels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """An upload's (H, W, 3) colour and alpha, read by polychrome's own reader (EXIF orientation, 16-bit
    gray, the pixel limit checked from the header before decoding, decompression bombs refused). That
    reader takes a path, so the upload is copied to a temporary file first. Raises ImageReadError."""
    with tempfile.NamedTemporaryFile(prefix="polychrome-upload-") as copy:
        shutil.copyfileobj(file, copy)
        copy.flush()
        return load_rgba(copy.name, max_pixels)


def predict(models: Models, name: str, file: BinaryIO, max_pixels: int) -> Entry:
    """Decode an upload and run the network once (a job for ``Gate.run``)."""
    rgb, alpha = read_upload(file, max_pixels)
    pipeline = models.get(name)
    return Entry(name, pipeline, pipeline.predict([pipeline.prepare(rgb, alpha)])[0])


def render_png(entry: Entry, temperature: float | None) -> bytes:
    """An entry decoded at ``temperature`` as PNG bytes at the upload's size, alpha kept (a job for ``Gate.run``)."""
    prediction = entry.pipeline.redecode(entry.prediction, temperature)
    rgb = to_hwc(entry.pipeline.render(prediction))
    buffer = io.BytesIO()
    write_png(buffer, rgb, prediction.photo.alpha)
    return buffer.getvalue()


def colorize_png(models: Models, name: str, file: BinaryIO, max_pixels: int, temperature: float | None) -> bytes:
    """Upload in, colourised PNG out, in one job."""
    return render_png(predict(models, name, file, max_pixels), temperature)


def distribution(entry: Entry, x: int, y: int) -> dict:
    """The predicted distribution over the ab bins at pixel (x, y): softmax of the logits in the output
    cell covering it, with each bin's sRGB colour at L = 50 for drawing it on the ab plane."""
    from polychrome.viz import bin_colours

    height, width = entry.prediction.photo.size
    h, w = entry.prediction.output.shape[-2:]
    p = entry.prediction.output[:, y * h // height, x * w // width].float().softmax(dim=0).cpu()
    bins = entry.pipeline.model.bins.cpu()
    top = int(p.argmax())
    colours = np.round(bin_colours(bins) * 255).astype(int)
    return {
        "x": x,
        "y": y,
        "bins": bins.tolist(),
        "p": p.tolist(),
        "top": bins[top].tolist(),
        "top_p": float(p[top]),
        "colors": ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in colours.tolist()],
    }
