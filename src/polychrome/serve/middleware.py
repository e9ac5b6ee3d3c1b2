"""Two ASGI middlewares that guard every route: an upload size limit and a last-resort error handler."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("polychrome.serve")


class UploadLimit:
    """Refuses request bodies above ``limit`` bytes with 413.

    A declared Content-Length is checked before anything is read, so a huge upload costs nothing; the
    bytes actually received are counted too, for chunked uploads and wrong headers. Going over mid-body
    raises an HTTPException from ``receive``, which FastAPI passes through its body parsing to the
    app's JSON error handler.
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            message = f"the upload is {int(declared):,} bytes, above this server's limit of {self._limit()}; send a smaller file"
            return await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, f"the upload is larger than this server's limit of {self._limit()}; send a smaller file")
            return message

        await self.app(scope, counting, send)

    def _limit(self) -> str:
        return f"{self.limit:,} bytes ({self.limit / 2**20:.3g} MiB)"


class CatchAll:
    """Any exception no route handled becomes a JSON 500 without details; the traceback goes to the log.

    Starlette's own handler for ``Exception`` re-raises after responding (so servers log it twice and
    test clients raise); this one ends the matter.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:  # too late for a clean response; the server closes the connection
                raise
            error = {"error": "internal server error; the details are in the server's log"}
            await JSONResponse(error, status_code=500)(scope, receive, send)
