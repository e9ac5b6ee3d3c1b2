"""The guided page (``/guided``) and its JSON API: an upload kept under a token, a colourisation per hint
state, the palette at a point, a reference photo set and removed (``polychrome.serve.guided`` does the work;
this module only speaks HTTP). Every refusal is ``{"error": ...}`` with 400 for a bad request: a model that
takes no hints, a hint outside the photo or with a bad colour (named as ``hints[i]``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from polychrome.pipeline import side_of
from polychrome.serve import guided
from polychrome.serve.app import Photo, choose_model
from polychrome.serve.guided import GuidedEntry
from polychrome.serve.prediction_cache import Models

T = TypeVar("T")
router = APIRouter()


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
    entry = await state.gate.run(guided.open_guided, name, pipeline, image, state.max_pixels)
    (height, width), (shown_height, shown_width) = entry.size, side_of(entry.display)
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
async def render(request: Request, token: str, hints: Annotated[Any, Body(embed=True)], full: bool = False) -> Response:
    """The colourisation for ``{"hints": [...]}`` (hint-file entries in the photo's pixels) and the kept
    reference: JPEG at display size, or with ``?full=true`` PNG at the photo's own size."""
    entry = find_guided(request, token)
    local = refused(guided.read_hints, entry, hints)
    image, media_type = await request.app.state.gate.run(guided.render_guided, entry, local, full)
    return Response(image, media_type=media_type)


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
    return await state.gate.run(guided.palette, entry, state.palette_model, pipeline, x, y)


@router.put("/api/guided/{token}/reference")
async def set_reference(request: Request, token: str, image: Photo, name: Annotated[str, Form()] = "") -> dict:
    """A reference photo whose colour distribution (global hints) steers the following renders."""
    entry = find_guided(request, token)
    refused(entry.pipeline.check_hints, False, True)
    entry.reference = await request.app.state.gate.run(guided.read_reference, image, request.app.state.max_pixels)
    entry.reference_name = name or None
    return {"reference": entry.reference_name, "saturation": round(entry.reference.saturation, 2)}


@router.delete("/api/guided/{token}/reference")
async def remove_reference(request: Request, token: str) -> dict:
    entry = find_guided(request, token)
    entry.reference = entry.reference_name = None
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
