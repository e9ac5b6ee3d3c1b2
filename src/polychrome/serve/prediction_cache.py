"""The models behind the web page and a cache of their predictions, with memory bounded however many requests arrive.

Each model is loaded once, on first use, and shared. A single slot (``Gate``) admits one job at a time:
decoding the upload, the forward pass, rendering and PNG encoding all run inside it, in a worker thread,
so at most one photo's working set is alive. Waiting requests hold only their upload (Starlette spools
it to disk above 1 MiB) and no thread; one that cannot start within the queue timeout is refused, so a
crowd gets a quick "try again" rather than a pile of stalled connections. Predictions are kept in a
byte-bounded LRU (``PredictionCache``), so the temperature slider and the distribution plot reuse one
forward pass. The guided page's uploads (``polychrome.serve.guided.GuidedEntry``: the photo's L at full,
display and network size, and the last hint state's output) are kept in the same cache.
"""

from __future__ import annotations

import io
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeVar

import anyio
import numpy as np

import polychrome
from polychrome.data import load_rgba, write_png
from polychrome.pipeline import ColorizationPipeline, Prediction

T = TypeVar("T")
K = TypeVar("K", bound="Cached")
CACHE_BYTES = 512 * 2**20  # a 50-megapixel photo's prediction (mostly its float L) is about 250 MB


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
                self._loaded[name] = polychrome.load_colorizer(name)
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


class QueueTimeout(Exception):
    """The gate stayed busy for the whole queue timeout; the client should retry after ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"the server is busy colourising other photos (waited {seconds:g} s); try again shortly")


class Gate:
    """Runs jobs one at a time in a worker thread; a job that cannot start within ``timeout`` seconds
    raises ``QueueTimeout``. Waiters queue first come, first served without holding a thread."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.slot = anyio.Semaphore(1)

    async def run(self, job: Callable[..., T], *args) -> T:
        try:
            with anyio.fail_after(self.timeout):
                await self.slot.acquire()
        except TimeoutError:
            raise QueueTimeout(self.timeout) from None
        try:
            # Not abandoned on cancellation: the slot is freed only once the thread has really finished.
            return await anyio.to_thread.run_sync(job, *args)
        finally:
            self.slot.release()


@dataclass
class Entry:
    """One colourised upload: which model (its name and itself), what it predicted, and the upload's
    alpha (None if opaque)."""

    model: str
    pipeline: ColorizationPipeline
    prediction: Prediction
    alpha: np.ndarray | None

    @property
    def nbytes(self) -> int:
        tensors = self.prediction.lightness, self.prediction.output
        return sum(t.numel() * t.element_size() for t in tensors) + (0 if self.alpha is None else self.alpha.nbytes)


class Cached(Protocol):
    """What the cache keeps: anything that says how many bytes it holds."""

    @property
    def nbytes(self) -> int: ...


class PredictionCache:
    """Recent predictions by random token; the least recently used go first once all of them hold more
    than ``max_bytes`` (the newest is always kept). Used from the event loop only, so it needs no lock.
    It keeps entries of more than one kind (an ``Entry``, a guided page's ``GuidedEntry``); ``get`` asks
    for one kind, so a token of the other kind is not found."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[Cached, int]] = OrderedDict()  # each with its size when put
        self._bytes = 0

    def put(self, entry: Cached) -> str:
        token = secrets.token_urlsafe(16)  # unguessable: one visitor cannot read another's photo
        size = entry.nbytes
        self._entries[token] = entry, size
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            self._bytes -= self._entries.popitem(last=False)[1][1]
        return token

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
    return Entry(name, pipeline, pipeline.predict(rgb), alpha)


def render_png(entry: Entry, temperature: float | None) -> bytes:
    """An entry decoded at ``temperature`` as PNG bytes at the upload's size, alpha kept (a job for ``Gate.run``)."""
    rgb = entry.pipeline.render(entry.prediction, temperature)
    buffer = io.BytesIO()
    write_png(buffer, rgb, entry.alpha)
    return buffer.getvalue()


def colorize_png(models: Models, name: str, file: BinaryIO, max_pixels: int, temperature: float | None) -> bytes:
    """Upload in, colourised PNG out, in one job."""
    return render_png(predict(models, name, file, max_pixels), temperature)


def distribution(entry: Entry, x: int, y: int) -> dict:
    """The predicted distribution over the ab bins at pixel (x, y): softmax of the logits in the output
    cell covering it, with each bin's sRGB colour at L = 50 for drawing it on the ab plane."""
    from polychrome.viz import bin_colours

    height, width = entry.prediction.lightness.shape[-2:]
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
