"""The guided page (``/guided``) and its JSON API: an upload kept under a token, a colourisation per hint
state, the palette at a point, a reference photo set and removed (``polychrome.serve.guided`` does the work;
this module only speaks HTTP). Every refusal is ``{"error": ...}`` with 400 for a bad request: a model that
takes no hints, a hint outside the photo or with a bad colour (named as ``hints[i]``), more than ``MAX_HINTS``
hints (a stroke's points counted one by one); 413 for a render request above ``MAX_RENDER_BYTES``.

A render request's JSON is read off the event loop: the body is collected as it arrives (its size checked as it
grows), then decoded and its hints parsed in a worker thread, so a large request (0.35 ms a hint of a new
colour) never stalls ``/healthz`` or anyone else's request. Each job goes to its lane
(``polychrome.serve.prediction_cache.Lanes``): Levin's renders and downloads and the full-resolution work on a
large photo to the slow lane, the rest to the fast one. After a job that may grow a kept entry (a render keeps its
prediction, the palette its logits) the cache measures the entry again."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from polychrome.hints import LocalHint, is_stroke
from polychrome.pipeline import side_of
from polychrome.serve import guided
from polychrome.serve.app import Photo, choose_model
from polychrome.serve.guided import GuidedEntry
from polychrome.serve.middleware import size_in_words
from polychrome.serve.prediction_cache import Models, upload_pixels

T = TypeVar("T")
router = APIRouter()
# Hints per render request: far more than anyone places by hand (the page sends what was clicked), small enough
# to parse in about 0.13 s. Each point of a stroke counts as one hint; polychrome.hints bounds the pixels along the
# strokes (MAX_STROKE_LENGTH) and their width (MAX_STROKE_WIDTH), so a request's patches stay bounded too.
MAX_HINTS = 1000
# A render request's body: a hint is about 50 bytes of JSON, so MAX_HINTS of them fit with room for spacing.
MAX_RENDER_BYTES = 256 * 2**10


def guided_models(models: Models) -> list[dict]:
    """The offered models that take colour hints, each with whether it takes a reference photo (loads them all)."""
    return [
        {"name": name, "reference": "global_hints" in pipeline.card.inputs}
        for name in models.names
        if (pipeline := models.get(name)).model.takes_hints
    ]


@router.get("/guided", response_class=HTMLResponse)
async def guided_page(request: Request) -> HTMLResponse:
    state = request.app.state
    context = {
        "models": await run_in_threadpool(guided_models, state.models),
        "offered": state.models.names,
        "palette_model": state.palette_model,
        "palette_source": guided.PALETTE_SOURCE,
        "upload_limit": state.upload_limit,
        "max_pixels": state.max_pixels,
    }
    return state.templates.TemplateResponse(request, "guided.html", context)


@router.post("/api/guided")
async def open_photo(request: Request, image: Photo, model: Annotated[str | None, Form()] = None) -> dict:
    """Keep an upload for guided colourisation with a model that takes hints; no network runs yet."""
    state = request.app.state
    name = choose_model(state.models, model)
    pipeline = await run_in_threadpool(state.models.get, name)
    refused(pipeline.check_hints, True, False)
    lane = state.lanes.choose(await run_in_threadpool(upload_pixels, image))
    entry = await lane.run(guided.open_guided, name, pipeline, image, state.max_pixels)
    (height, width), (shown_height, shown_width) = entry.size, side_of(entry.shown.lightness)
    return {
        "token": state.cache.put(entry),
        "model": name,
        "width": width,
        "height": height,
        "display_width": shown_width,
        "display_height": shown_height,
        "reference": "global_hints" in pipeline.card.inputs,
    }


@router.post("/api/guided/{token}/render")
async def render(request: Request, token: str, full: bool = False) -> Response:
    """The colourisation for ``{"hints": [...]}`` (hint-file entries in the photo's pixels, at most
    ``MAX_HINTS``) and the kept reference: JPEG at display size, or with ``?full=true`` PNG at the photo's own
    size. Its ``Server-Timing`` header (W3C Server Timing: the browser's developer tools show it) says how long
    each step took (reading the hints, waiting for the lane, the prediction, the merge, the image's encoding), so
    that a slow click can be split between them and the way there and back (benchmarks/guided_browser_latency.py)."""
    state = request.app.state
    entry = find_guided(request, token)
    started = time.perf_counter()
    body = await read_body(request, MAX_RENDER_BYTES)
    local = await run_in_threadpool(refused, read_render_request, entry, body)
    read = time.perf_counter()
    # Levin solves at the size rendered (slow at any size); a network's download works at the photo's own.
    lane = state.lanes.choose(math.prod(entry.size) if full else None, entry.pipeline.card.full_resolution)
    spent: dict[str, float] = {}
    image, media_type = await lane.run(guided.render_guided, entry, local, full, spent)
    state.cache.update(token)  # the entry keeps this hint state's prediction
    steps = {"hints": (read - started) * 1e3, "wait": (time.perf_counter() - read) * 1e3 - sum(spent.values())}
    timing = ", ".join(f"{step};dur={milliseconds:.1f}" for step, milliseconds in (steps | spent).items())
    return Response(image, media_type=media_type, headers={"Server-Timing": timing})


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 when above ``limit`` bytes; the rest of a refused body is read and
    thrown away (the upload limit bounds it), so that the client sees the answer."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise HTTPException(
            413,
            f"the render request is {size_in_words(size)}, above the limit of {size_in_words(limit)} "
            f"(room for {MAX_HINTS:,} hints); send fewer hints",
        )
    return b"".join(chunks)


def read_render_request(entry: GuidedEntry, body: bytes) -> list[LocalHint]:
    """The hints of a render request's JSON body ``{"hints": [...]}`` (a worker thread's job: parsing takes
    about 0.35 ms a hint of a colour not seen before, 0.01 ms after); a one-line ValueError for a body that is not
    that, or holds more than ``MAX_HINTS``."""
    try:
        document = json.loads(body)
    except ValueError as error:  # a JSONDecodeError, or bytes that are not UTF-8
        raise ValueError(f'the request body is not JSON ({error}); send {{"hints": [...]}}') from None
    if not isinstance(document, dict) or "hints" not in document:
        raise ValueError(f'the request body must be {{"hints": [...]}}, got {type(document).__name__}')
    hints = document["hints"]
    if isinstance(hints, list) and (count := hint_count(hints)) > MAX_HINTS:
        raise ValueError(
            f"{count:,} hints in one request, above this server's limit of {MAX_HINTS:,}; send fewer hints"
        )
    return guided.read_hints(entry, hints)


def hint_count(hints: list) -> int:
    """How many hints a request's entries count as towards ``MAX_HINTS``: one a click, one a point of a stroke."""
    return sum(len(entry["stroke"]) if is_stroke(entry) and isinstance(entry["stroke"], list) else 1 for entry in hints)


@router.get("/api/guided/{token}/palette")
async def palette(request: Request, token: str, x: Annotated[int, Query()], y: Annotated[int, Query()]) -> dict:
    """The colours the automatic model (the app's ``palette_model``) finds most likely at pixel (x, y)."""
    state = request.app.state
    entry = find_guided(request, token)
    height, width = entry.size
    if not (0 <= x < width and 0 <= y < height):
        raise HTTPException(400, f"pixel ({x}, {y}) lies outside the {width}x{height} photo")
    pipeline = await run_in_threadpool(state.models.get, state.palette_model)
    if pipeline.card.head != "classification":
        raise HTTPException(400, f"{state.palette_model} predicts ab directly: it has no distribution to suggest from")
    lane = state.lanes.choose(height * width)  # the first click resizes the photo's own L for the network
    answer = await lane.run(guided.palette, entry, state.palette_model, pipeline, x, y)
    state.cache.update(token)  # the entry keeps the palette model's prediction
    return answer


@router.put("/api/guided/{token}/reference")
async def set_reference(request: Request, token: str, image: Photo, name: Annotated[str, Form()] = "") -> dict:
    """A reference photo whose colour distribution (global hints) steers the following renders."""
    state = request.app.state
    entry = find_guided(request, token)
    refused(entry.pipeline.check_hints, False, True)
    lane = state.lanes.choose(await run_in_threadpool(upload_pixels, image))
    entry.reference = await lane.run(guided.read_reference, image, state.max_pixels)
    entry.reference_name = name or None
    state.cache.update(token)
    return {"reference": entry.reference_name, "saturation": round(entry.reference.saturation, 2)}


@router.delete("/api/guided/{token}/reference")
async def remove_reference(request: Request, token: str) -> dict:
    entry = find_guided(request, token)
    entry.reference = entry.reference_name = None
    request.app.state.cache.update(token)
    return {"reference": None}


def refused(check: Callable[..., T], *args: object) -> T:
    """``check(*args)``, its ValueError (one line naming what is wrong) answered with 400."""
    try:
        return check(*args)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None


def find_guided(request: Request, token: str) -> GuidedEntry:
    entry = request.app.state.cache.get(token, GuidedEntry)
    if entry is None:
        raise HTTPException(
            404, "no guided photo with this token (the server keeps only recent ones); upload the photo again"
        )
    return entry
