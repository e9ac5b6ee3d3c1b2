"""One way to answer with an error: JSON ``{"error": message}`` for the API (``/api/...``), whose callers
are scripts and the pages' own JavaScript, and an HTML page for every address a person opens in a browser."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from fastapi import Request
from fastapi.responses import JSONResponse, Response


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """``message`` with ``status``, as JSON under ``/api/`` and as the app's error page elsewhere."""
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    context = {"status": status, "title": HTTPStatus(status).phrase, "message": message}
    return request.app.state.templates.TemplateResponse(
        request, "error.html", context, status_code=status, headers=headers
    )
