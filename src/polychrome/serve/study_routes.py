"""The human study on the web: the participant's page and its JSON API, the pre-made images, and the
admin's results (``polychrome.human_study`` does the bookkeeping; this module only speaks HTTP).

A participant is created by ``POST /api/study/{name}/start``, never by opening the page, so link
previewers and crawlers do not take places in the model rotation; their id travels in the
``polychrome_participant`` cookie. A page whose cookie was lost mid-study sends the id it was given back
to ``start``, which resumes that participant. Test answers get no feedback, not even in the JSON, so a
participant watching the network cannot learn from it. A ``StudyError`` becomes an error page, or JSON
``{"error": ...}`` under ``/api/`` (see ``polychrome.serve.errors``).
"""

from __future__ import annotations

import base64
import io
import secrets
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from polychrome.human_study import (
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
    store_exists,
    study_of,
)
from polychrome.serve.errors import error_response
from polychrome.viz import plot_fool_rates

COOKIE = "polychrome_participant"
COOKIE_DAYS = 30


class Forbidden(StudyError):
    """A results request without the admin token."""


class NoParticipant(StudyError):
    """A participant's request without a participant: the cookie was never set, or was lost."""


STATUS = {NotFound: 404, Conflict: 409, Forbidden: 403, NoParticipant: 401}


class StudySite:
    """The studies one app serves: the database (opened on first use, and only if it exists, so a server
    nobody takes a study on writes nothing), the folder of their images, and the admin token (None:
    results are closed)."""

    def __init__(self, db: Store | str | Path, study_data: str | Path, admin_token: str | None):
        self._db: str | Path = "" if isinstance(db, Store) else db
        self._store: Store | None = db if isinstance(db, Store) else None
        self.data_root = Path(study_data).resolve()
        self.admin_token = admin_token
        self._lock = threading.Lock()

    def store(self, name: str) -> Store:
        """The open database; NotFound for study ``name`` while there is no database at all."""
        with self._lock:
            if self._store is None:
                if not store_exists(self._db):
                    raise NotFound(f"there is no study named {name!r} (no study has been created on this server)")
                self._store = open_store(self._db)
            return self._store


def mount_studies(app: FastAPI, db: Store | str | Path, study_data: str | Path, admin_token: str | None) -> None:
    """Serve every study in ``db`` whose images lie in ``study_data/<name>/``; results need ``admin_token``."""
    app.state.studies = StudySite(db, study_data, admin_token)
    app.include_router(router)

    @app.exception_handler(StudyError)
    async def study_error(request: Request, error: StudyError) -> Response:
        return error_response(request, STATUS.get(type(error), 400), str(error))


def study_store(request: Request, name: str) -> Store:
    return request.app.state.studies.store(name)


StudyStore = Annotated[Store, Depends(study_store)]


def cookie_participant(request: Request, name: str, store: StudyStore) -> str | None:
    """The cookie's participant if they belong to study ``name`` (a stale or foreign cookie is ignored)."""
    return _of_study(store, request.cookies.get(COOKIE), name)


def _of_study(store: Store, participant: Any, name: str) -> str | None:
    try:
        return (
            participant
            if isinstance(participant, str) and participant and study_of(store, participant) == name
            else None
        )
    except NotFound:
        return None


def require_participant(
    name: str, store: StudyStore, participant: Annotated[str | None, Depends(cookie_participant)]
) -> str:
    """The one guard of every participant's request (an unknown study is NotFound before anything else)."""
    if participant is None:
        get_study(store, name)
        raise NoParticipant("no participant: start the study first (the page needs cookies to remember you)")
    return participant


def require_admin(request: Request, token: str | None = None) -> None:
    admin_token = request.app.state.studies.admin_token
    if admin_token is None:
        raise Forbidden("results are closed: the server was started without an admin token")
    if token is None or not secrets.compare_digest(token.encode(), admin_token.encode()):
        raise Forbidden("results need the admin token: add ?token=... to the address")


router = APIRouter()


@router.get("/study/{name}", name="study_page")
def study_page(
    request: Request, name: str, store: StudyStore, participant: Annotated[str | None, Depends(cookie_participant)]
) -> Response:
    study = get_study(store, name)
    return request.app.state.templates.TemplateResponse(
        request, "study.html", {"study": study, "resuming": participant is not None}
    )


@router.post("/api/study/{name}/start", name="study_start")
def start(
    name: str,
    store: StudyStore,
    participant: Annotated[str | None, Depends(cookie_participant)],
    body: Annotated[Any, Body()] = None,
) -> Response:
    """Start a participant, or resume the cookie's, or the one a page names in ``{"participant": id}``
    (its cookie was lost; an id this study does not know is refused, so the page can say so)."""
    named = body.get("participant") if isinstance(body, dict) else None
    if participant is None and named is not None and _of_study(store, named, name) is None:
        get_study(store, name)
        raise NoParticipant("this browser's participant is not part of this study any more: start again")
    resumed = participant or named
    participant = resumed or start_participant(store, name)
    response = JSONResponse({"participant": participant, "resumed": resumed is not None})
    response.set_cookie(COOKIE, participant, max_age=COOKIE_DAYS * 86400, httponly=True, samesite="lax")
    return response


@router.get("/api/study/{name}/next", name="study_next")
def next_pair(
    request: Request, name: str, store: StudyStore, participant: Annotated[str, Depends(require_participant)]
) -> dict:
    trial = next_trial(store, participant)
    if trial is None:
        return {"done": True}
    urls = {side: request.url_for("study_image", name=name, key=trial[side]).path for side in ("left", "right")}
    return {"done": False, **trial, **urls}


@router.post("/api/study/{name}/answer", name="study_answer")
def post_answer(
    store: StudyStore, participant: Annotated[str, Depends(require_participant)], body: Annotated[Any, Body()] = None
) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("trial"), int) or isinstance(body.get("trial"), bool):
        raise StudyError('send JSON {"trial": <id>, "side": "left" or "right"}')
    side: Any = body.get("side")  # checked by answer, which names a bad value
    result = answer(store, participant, body["trial"], side)
    return result if result["phase"] == "practice" else {"phase": result["phase"], "recorded": True}


@router.get("/study/{name}/image/{key}", name="study_image")
def image(request: Request, name: str, key: str, store: StudyStore) -> Response:
    get_study(store, name)
    folder = (request.app.state.studies.data_root / name).resolve()
    path = (folder / key).resolve()
    if path.parent != folder or path.suffix != ".png" or not path.is_file():
        raise NotFound(f"study {name!r} has no image {key!r}")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/study/{name}/results", name="study_results", dependencies=[Depends(require_admin)])
def results(request: Request, name: str, store: StudyStore, token: str | None = None) -> Response:
    study = get_study(store, name)
    rates = fool_rates(store, name)
    figure = io.BytesIO()
    plot_fool_rates(rates, figure)
    return request.app.state.templates.TemplateResponse(
        request,
        "study_results.html",
        {
            "study": study,
            "rates": rates,
            "token": token,
            "figure": "data:image/png;base64," + base64.b64encode(figure.getvalue()).decode(),
        },
    )


@router.get("/api/study/{name}/results.csv", name="study_results_csv", dependencies=[Depends(require_admin)])
def results_table(name: str, store: StudyStore) -> Response:
    text = io.StringIO()
    results_csv(store, name, text)
    return Response(
        text.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}-results.csv"'},
    )
