"""The web app: a colourise page and its JSON/PNG API (``create_app``), served by uvicorn (``serve``); the
guided page's routes are in ``polychrome.serve.guided_routes``.

Pages are rendered on the server with Jinja2 and need a little plain JavaScript, all shipped inside the
package: the app works offline and fetches nothing from another host. Every error under ``/api/`` is
JSON ``{"error": "..."}``, and an HTML page elsewhere, with a status that says whose fault it was.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from polychrome.color import DEFAULT_TEMPERATURE
from polychrome.data import ImageReadError
from polychrome.data.images import TooManyPixels
from polychrome.levin import LevinTooLarge
from polychrome.models.weights import BUNDLED
from polychrome.serve import prediction_cache
from polychrome.serve.errors import error_response
from polychrome.serve.middleware import CatchAll, UploadLimit, size_in_words
from polychrome.serve.prediction_cache import FAST_PIXELS, Busy, Entry, Lanes, Models, PredictionCache

if TYPE_CHECKING:
    from polychrome.human_study import Store

HERE = Path(__file__).parent
# The guided model joins the defaults once its weights are bundled.
DEFAULT_MODELS = ["default", "gray"] + (["guided"] if "guided" in BUNDLED else [])
MAX_TEMPERATURE = 10.0  # far flatter than the mean (T = 1); anything above is a typo
log = logging.getLogger("polychrome.serve")


def create_app(
    models: list[str] | None = None,
    db: Store | str | Path | None = None,
    upload_limit: int = 25 * 2**20,
    max_pixels: int = 50_000_000,
    queue_timeout: float = 30.0,
    study_data: str | Path | None = None,
    admin_token: str | None = None,
    palette_model: str = "default",
    fast_pixels: int = FAST_PIXELS,
) -> FastAPI:
    """The app serving ``models`` (names or paths as ``polychrome.load_colorizer`` takes them, each loaded
    on first use). Files above ``upload_limit`` bytes or ``max_pixels`` pixels are refused. Work on photos of
    at most ``fast_pixels`` pixels runs in the fast lane, Levin's optimisation and work on larger photos in the
    slow lane (``polychrome.serve.prediction_cache.Lanes``); a request that would wait more than
    ``queue_timeout`` seconds for its lane gets 503 with Retry-After. With ``db`` (a database URL
    or path, opened when a study is first asked for) the human-study pages are mounted too, with
    ``study_data`` (default ``polychrome.human_study.studies_home()``) and ``admin_token``. The guided
    page (``/guided``) offers those of ``models`` that take colour hints; its palette of suggested colours
    comes from ``palette_model``, an automatic classification model (loaded on the first click).
    """
    # No /docs: FastAPI's API explorer loads its scripts from a CDN, and these pages fetch nothing from elsewhere.
    app = FastAPI(title="polychrome", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.models = Models(models or DEFAULT_MODELS)
    app.state.lanes = Lanes(queue_timeout, fast_pixels)
    app.state.cache = PredictionCache()
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.state.upload_limit, app.state.max_pixels = upload_limit, max_pixels
    app.state.palette_model = palette_model
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(UploadLimit, limit=upload_limit)
    app.add_middleware(CatchAll)
    add_error_handlers(app)
    app.include_router(router)
    from polychrome.serve.guided_routes import router as guided_router  # it imports this module's helpers

    app.include_router(guided_router)
    if db is not None:
        from polychrome.human_study import studies_home
        from polychrome.serve.study_routes import mount_studies

        mount_studies(app, db, study_data if study_data is not None else studies_home(), admin_token)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Errors as JSON under /api/ and as an HTML page elsewhere (``error_response``), with a status that
    says whose fault it was."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return error_response(request, error.status_code, error.detail, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{e['loc'][-1]} ({e['loc'][0]}): {e['msg']}" for e in error.errors())
        return error_response(request, 422, f"invalid request: {problems}")

    @app.exception_handler(ImageReadError)
    async def unreadable(request: Request, error: ImageReadError) -> Response:
        if isinstance(error, TooManyPixels):
            log.info(
                "refused a %dx%d photo above the limit of %d pixels; `polychrome serve --max-pixels N` allows larger ones",
                error.width,
                error.height,
                error.limit,
            )
            return error_response(
                request,
                422,
                f"this photo has too many pixels: {error.width}x{error.height} is "
                f"{error.width * error.height:,} pixels, above this server's limit of {error.limit:,} "
                f"({error.limit / 1e6:g} megapixels); send a smaller photo",
            )
        return error_response(request, 422, f"cannot use this image: {error.reason}")

    @app.exception_handler(LevinTooLarge)
    async def too_large_for_levin(request: Request, error: LevinTooLarge) -> Response:
        return error_response(request, 422, str(error))

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> Response:
        return error_response(request, 503, str(error), {"Retry-After": str(error.retry_after)})


def photo(request: Request, image: Annotated[UploadFile, File()]) -> BinaryIO:
    """The uploaded file, refused when empty or above the upload limit (the file, not the request, is counted)."""
    size, limit = image.size, request.app.state.upload_limit
    if size == 0:
        raise HTTPException(422, "cannot use this image: the file is empty (0 bytes); choose a photo")
    if size is not None and size > limit:
        raise HTTPException(
            413,
            f"the file is {size_in_words(size)}, above this server's limit of {size_in_words(limit)}; "
            "send a smaller file",
        )
    return image.file


Photo = Annotated[BinaryIO, Depends(photo)]
router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def colorize_page(request: Request) -> HTMLResponse:
    state = request.app.state
    context = {"models": state.models.names, "upload_limit": state.upload_limit, "max_pixels": state.max_pixels}
    return state.templates.TemplateResponse(request, "colorize.html", context)


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/api/models")
async def list_models(request: Request) -> list[dict]:
    return await run_in_threadpool(request.app.state.models.describe)


@router.post("/api/colorize")
async def colorize(
    request: Request,
    image: Photo,
    model: Annotated[str | None, Form()] = None,
    temperature: Annotated[str | None, Form()] = None,
) -> Response:
    """The upload colourised, as a PNG at its own size (alpha kept)."""
    state = request.app.state
    name = choose_model(state.models, model)
    temperature_value = parse_temperature(temperature)
    lane = state.lanes.choose(await run_in_threadpool(prediction_cache.upload_pixels, image))
    png = await lane.run(prediction_cache.colorize_png, state.models, name, image, state.max_pixels, temperature_value)
    return Response(png, media_type="image/png")


@router.post("/api/predict")
async def predict(request: Request, image: Photo, model: Annotated[str | None, Form()] = None) -> dict:
    """One forward pass, kept under a token for ``/api/render`` and ``/api/distribution``."""
    state = request.app.state
    name = choose_model(state.models, model)
    lane = state.lanes.choose(await run_in_threadpool(prediction_cache.upload_pixels, image))
    entry = await lane.run(prediction_cache.predict, state.models, name, image, state.max_pixels)
    height, width = entry.prediction.photo.size
    return {"token": state.cache.put(entry), "width": width, "height": height} | prediction_cache.describe(
        name, entry.pipeline
    )


@router.get("/api/render/{token}")
async def render(request: Request, token: str, temperature: str | None = None) -> Response:
    """A kept prediction decoded at ``temperature``, as PNG: no second forward pass."""
    state = request.app.state
    entry = find(state.cache, token)
    temperature_value = parse_temperature(temperature)
    png = await state.lanes.choose(math.prod(entry.prediction.photo.size)).run(
        prediction_cache.render_png, entry, temperature_value
    )
    return Response(png, media_type="image/png")


@router.get("/api/distribution/{token}")
async def distribution(request: Request, token: str, x: Annotated[int, Query()], y: Annotated[int, Query()]) -> dict:
    """The predicted distribution over the ab bins at pixel (x, y) of a kept prediction."""
    entry = find(request.app.state.cache, token)
    if entry.pipeline.card.head != "classification":
        raise HTTPException(
            400, f"{entry.model} predicts ab directly (a regression model): it has no distribution over colours"
        )
    height, width = entry.prediction.photo.size
    if not (0 <= x < width and 0 <= y < height):
        raise HTTPException(
            400,
            f"pixel ({x}, {y}) lies outside the {width}x{height} image; x must be in [0, {width}) and y in [0, {height})",
        )
    return await run_in_threadpool(prediction_cache.distribution, entry, x, y)


def choose_model(models: Models, name: str | None) -> str:
    """The requested model, or the first one offered when none is named."""
    if not name:
        return models.names[0]
    if name not in models.names:
        raise HTTPException(400, f"unknown model {name!r}; this server offers: {', '.join(models.names)}")
    return name


def parse_temperature(text: str | None) -> float | None:
    """A decoding temperature in (0, MAX_TEMPERATURE], or None (the model's own) when not given."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TEMPERATURE:  # NaN fails every comparison
        raise HTTPException(
            400,
            f"temperature must be a number in (0, {MAX_TEMPERATURE:g}], got {text!r}; "
            f"{DEFAULT_TEMPERATURE} is Zhang et al.'s, 1 the plain mean, smaller is more vivid",
        )
    return value


def find(cache: PredictionCache, token: str) -> Entry:
    entry = cache.get(token, Entry)
    if entry is None:
        raise HTTPException(
            404, "no colourisation with this token (the server keeps only recent ones); upload the photo again"
        )
    return entry


def serve(
    models: list[str] | None = None, host: str = "127.0.0.1", port: int = 8000, db: str | None = None, **options
) -> None:
    """Run the app with uvicorn until interrupted; ``options`` are ``create_app``'s other keywords.
    Listens on the loopback interface unless ``host`` says otherwise. Every model is loaded first, so a
    bad name fails here rather than on the first request."""
    import uvicorn

    app = create_app(models, db, **options)
    app.state.models.describe()
    uvicorn.run(app, host=host, port=port)
