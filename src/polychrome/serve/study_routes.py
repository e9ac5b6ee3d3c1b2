"""The human study on the web: the participant's page and its JSON API, the pre-made images, and the
admin's results (``human_study`` does the bookkeeping; this module only speaks HTTP).

A participant is created by ``POST /api/study/{name}/start``, never by opening the page, so link
previewers and crawlers do not take places in the model rotation; their id travels in the
``polychrome_participant`` cookie. Test answers get no feedback, not even in the JSON, so a participant
watching the network cannot learn from it. Errors are JSON ``{"error": ...}``.
"""

from __future__ import annotations

import base64
import functools
import io
import secrets
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, Body, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from polychrome.serve.human_study import (
    Conflict,
    NotFound,
    Store,
    StudyError,
    answer,
    fool_rates,
    get_study,
    next_trial,
    open_store,
    results_csv,
    start_participant,
    study_of,
)
from polychrome.viz import plot_fool_rates

COOKIE = "polychrome_participant"
COOKIE_DAYS = 30


class Forbidden(StudyError):
    """A results request without the admin token."""


STATUS = {NotFound: 404, Conflict: 409, Forbidden: 403}


def _json_errors(route: Callable) -> Callable:
    """Turn a StudyError raised by a route into ``{"error": message}`` with the status its kind calls for."""

    @functools.wraps(route)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return route(*args, **kwargs)
        except StudyError as error:
            return JSONResponse({"error": str(error)}, status_code=STATUS.get(type(error), 400))

    return wrapper


def make_router(db: Store | str | Path, study_data: str | Path, admin_token: str | None, templates: Jinja2Templates) -> APIRouter:
    """Routes of every study in ``db`` whose images lie in ``study_data/<name>/``; results need ``admin_token``
    (with None they are closed)."""
    store = db if isinstance(db, Store) else open_store(db)
    data_root = Path(study_data).resolve()
    router = APIRouter()

    def participant_of(request: Request, name: str) -> str | None:
        """The cookie's participant if they belong to study ``name`` (a stale or foreign cookie is ignored)."""
        participant = request.cookies.get(COOKIE)
        try:
            return participant if participant and study_of(store, participant) == name else None
        except NotFound:
            return None

    def require_admin(token: str | None) -> None:
        if admin_token is None:
            raise Forbidden("results are closed: the server was started without an admin token")
        if token is None or not secrets.compare_digest(token.encode(), admin_token.encode()):
            raise Forbidden("results need the admin token: add ?token=...")

    @router.get("/study/{name}", name="study_page")
    @_json_errors
    def study_page(request: Request, name: str) -> Response:
        study = get_study(store, name)
        return templates.TemplateResponse(request, "study.html", {
            "study": study, "resuming": participant_of(request, name) is not None})

    @router.post("/api/study/{name}/start", name="study_start")
    @_json_errors
    def start(request: Request, name: str) -> Response:
        participant = participant_of(request, name)
        resumed = participant is not None
        participant = participant or start_participant(store, name)
        response = JSONResponse({"participant": participant, "resumed": resumed})
        response.set_cookie(COOKIE, participant, max_age=COOKIE_DAYS * 86400, httponly=True, samesite="lax")
        return response

    @router.get("/api/study/{name}/next", name="study_next")
    @_json_errors
    def next_pair(request: Request, name: str) -> dict:
        participant = participant_of(request, name)
        if participant is None:
            raise StudyError("no participant: start the study first")
        trial = next_trial(store, participant)
        if trial is None:
            return {"done": True}
        urls = {side: request.url_for("study_image", name=name, key=trial[side]).path for side in ("left", "right")}
        return {"done": False, **trial, **urls}

    @router.post("/api/study/{name}/answer", name="study_answer")
    @_json_errors
    def post_answer(request: Request, name: str, body: Any = Body(None)) -> dict:
        participant = participant_of(request, name)
        if participant is None:
            raise StudyError("no participant: start the study first")
        if not isinstance(body, dict) or not isinstance(body.get("trial"), int) or isinstance(body.get("trial"), bool):
            raise StudyError('send JSON {"trial": <id>, "side": "left" or "right"}')
        result = answer(store, participant, body["trial"], body.get("side"))
        return result if result["phase"] == "practice" else {"phase": result["phase"], "recorded": True}

    @router.get("/study/{name}/image/{key}", name="study_image")
    @_json_errors
    def image(name: str, key: str) -> Response:
        get_study(store, name)
        folder = (data_root / name).resolve()
        path = (folder / key).resolve()
        if path.parent != folder or path.suffix != ".png" or not path.is_file():
            raise NotFound(f"study {name!r} has no image {key!r}")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})

    @router.get("/study/{name}/results", name="study_results")
    @_json_errors
    def results(request: Request, name: str, token: str | None = None) -> Response:
        require_admin(token)
        study = get_study(store, name)
        rates = fool_rates(store, name)
        figure = io.BytesIO()
        plot_fool_rates(rates, figure)
        return templates.TemplateResponse(request, "study_results.html", {
            "study": study, "rates": rates, "token": token,
            "figure": "data:image/png;base64," + base64.b64encode(figure.getvalue()).decode()})

    @router.get("/api/study/{name}/results.csv", name="study_results_csv")
    @_json_errors
    def results_table(name: str, token: str | None = None) -> Response:
        require_admin(token)
        text = io.StringIO()
        results_csv(store, name, text)
        return Response(text.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}-results.csv"'})

    return router
