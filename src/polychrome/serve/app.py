"""The web app: a colourise page and its JSON/PNG API (``create_app``), served by uvicorn (``serve``).

Pages are rendered on the server with Jinja2 and need a little plain JavaScript, all shipped inside the
package: the app works offline and fetches nothing from another host. Every error is JSON
``{"error": "..."}`` with a status that says whose fault it was.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from polychrome.data import ImageReadError
from polychrome.serve import inference
from polychrome.serve.inference import Entry, Gate, Models, PredictionCache, QueueTimeout
from polychrome.serve.middleware import CatchAll, UploadLimit

HERE = Path(__file__).parent
DEFAULT_MODELS = ["default", "gray"]
MAX_TEMPERATURE = 10.0  # far flatter than the mean (T = 1); anything above is a typo


def create_app(models: list[str] | None = None, db: str | None = None, upload_limit: int = 25 * 2**20,
               max_pixels: int = 50_000_000, queue_timeout: float = 30.0, study_data: str | Path | None = None,
               admin_token: str | None = None) -> FastAPI:
    """The app serving ``models`` (names or paths as ``polychrome.load_colorizer`` takes them, each loaded
    on first use). Uploads above ``upload_limit`` bytes or ``max_pixels`` pixels are refused; a request
    that waits more than ``queue_timeout`` seconds for the network gets 503. With ``db`` (a database URL)
    the human-study pages are mounted too, with ``study_data`` and ``admin_token``.
    """
    # No /docs: FastAPI's API explorer loads its scripts from a CDN, and these pages fetch nothing from elsewhere.
    app = FastAPI(title="polychrome", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.models = pool = Models(models or DEFAULT_MODELS)
    app.state.gate = gate = Gate(queue_timeout)
    app.state.cache = cache = PredictionCache()
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(UploadLimit, limit=upload_limit)
    app.add_middleware(CatchAll)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{e['loc'][-1]} ({e['loc'][0]}): {e['msg']}" for e in error.errors())
        return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)

    @app.exception_handler(ImageReadError)
    async def unreadable(request: Request, error: ImageReadError) -> JSONResponse:
        return JSONResponse({"error": f"cannot use this image: {error.reason}"}, status_code=422)

    @app.exception_handler(QueueTimeout)
    async def busy(request: Request, error: QueueTimeout) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=503, headers={"Retry-After": str(max(1, math.ceil(error.seconds)))})

    @app.get("/", response_class=HTMLResponse)
    async def colorize_page(request: Request) -> HTMLResponse:
        context = {"models": pool.names, "upload_limit": upload_limit, "max_pixels": max_pixels}
        return templates.TemplateResponse(request, "colorize.html", context)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/models")
    async def list_models() -> list[dict]:
        return await run_in_threadpool(pool.describe)

    @app.post("/api/colorize")
    async def colorize(image: Annotated[UploadFile, File()], model: Annotated[str | None, Form()] = None,
                       temperature: Annotated[str | None, Form()] = None) -> Response:
        """The upload colourised, as a PNG at its own size (alpha kept)."""
        name, temperature = choose_model(pool, model), parse_temperature(temperature)
        png = await gate.run(inference.colorize_png, pool, name, image.file, max_pixels, temperature)
        return Response(png, media_type="image/png")

    @app.post("/api/predict")
    async def predict(image: Annotated[UploadFile, File()], model: Annotated[str | None, Form()] = None) -> dict:
        """One forward pass, kept under a token for ``/api/render`` and ``/api/distribution``."""
        name = choose_model(pool, model)
        entry = await gate.run(inference.predict, pool, name, image.file, max_pixels)
        height, width = entry.prediction.lightness.shape[-2:]
        return {"token": cache.put(entry), "width": width, "height": height} | inference.describe(name, entry.pipeline)

    @app.get("/api/render/{token}")
    async def render(token: str, temperature: str | None = None) -> Response:
        """A kept prediction decoded at ``temperature``, as PNG: no second forward pass."""
        entry, temperature = find(cache, token), parse_temperature(temperature)
        return Response(await gate.run(inference.render_png, entry, temperature), media_type="image/png")

    @app.get("/api/distribution/{token}")
    async def distribution(token: str, x: Annotated[int, Query()], y: Annotated[int, Query()]) -> dict:
        """The predicted distribution over the ab bins at pixel (x, y) of a kept prediction."""
        entry = find(cache, token)
        if entry.pipeline.model.head != "classification":
            raise HTTPException(400, f"{entry.model} predicts ab directly (a regression model): it has no distribution over colours")
        height, width = entry.prediction.lightness.shape[-2:]
        if not (0 <= x < width and 0 <= y < height):
            raise HTTPException(400, f"pixel ({x}, {y}) lies outside the {width}x{height} image; x must be in [0, {width}) and y in [0, {height})")
        return await run_in_threadpool(inference.distribution, entry, x, y)

    if db is not None:
        from polychrome.serve.study_routes import make_router

        app.include_router(make_router(db, study_data, admin_token, templates))
    return app


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
        raise HTTPException(400, f"temperature must be a number in (0, {MAX_TEMPERATURE:g}], got {text!r}; "
                                 "0.38 is Zhang et al.'s, 1 the plain mean, smaller is more vivid")
    return value


def find(cache: PredictionCache, token: str) -> Entry:
    entry = cache.get(token)
    if entry is None:
        raise HTTPException(404, "no colourisation with this token (the server keeps only recent ones); upload the photo again")
    return entry


def serve(models: list[str] | None = None, host: str = "127.0.0.1", port: int = 8000, db: str | None = None,
          **options) -> None:
    """Run the app with uvicorn until interrupted; ``options`` are ``create_app``'s other keywords.
    Listens on the loopback interface unless ``host`` says otherwise. Every model is loaded first, so a
    bad name fails here rather than on the first request."""
    import uvicorn

    app = create_app(models, db, **options)
    app.state.models.describe()
    uvicorn.run(app, host=host, port=port)
