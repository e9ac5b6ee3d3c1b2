"""Two ASGI middlewares that guard every route: an upload size limit and a last-resort error handler."""

from __future__ import annotations

import logging

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("polychrome.serve")

MULTIPART_ALLOWANCE = (
    64 * 2**10
)  # a request may exceed the file limit by this much: boundaries, part headers, form fields
DRAIN_BYTES = 256 * 2**20  # the most of a refused body read and thrown away so that the client sees the 413
DRAIN_SECONDS = 30.0  # and the longest that takes (nginx's lingering_time)


def size_in_words(size: int) -> str:
    """A byte count a person can compare with another: ``25.0 MiB (26,214,401 bytes)``, ``1,000 bytes``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit} ({size:,} bytes)"
    return f"{size:,} bytes"


class UploadLimit:
    """Refuses requests that cannot hold a file of at most ``limit`` bytes with 413.

    The limit is for the file: a request may be ``MULTIPART_ALLOWANCE`` longer (the route checks the
    file itself). A declared Content-Length is checked before the app sees anything; the bytes actually
    received are counted too, for chunked uploads and wrong headers. Going over mid-body raises an
    HTTPException from ``receive``, which FastAPI passes through its body parsing to the app's error
    handler.

    A refused body is read and thrown away (up to ``DRAIN_BYTES`` or ``DRAIN_SECONDS``) before the 413
    is sent and the connection closed, as nginx's lingering close does: a client that sends its whole
    body before reading the answer (Python's urllib and requests do) would otherwise find the connection
    reset before the 413 reaches it. A client that asked ``Expect: 100-continue`` has sent nothing yet,
    so it gets the 413 at once.
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit
        self.bound = limit + MULTIPART_ALLOWANCE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.bound:
            if headers.get(b"expect", b"").lower() != b"100-continue":
                await drain(receive)
            message = f"the upload is {size_in_words(int(declared))}, above this server's limit of {self._limit()}; send a smaller file"
            return await JSONResponse({"error": message}, status_code=413, headers={"Connection": "close"})(
                scope, receive, send
            )
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.bound:
                if message.get("more_body"):
                    await drain(receive)
                raise HTTPException(
                    413,
                    f"the upload is larger than this server's limit of {self._limit()}; send a smaller file",
                    headers={"Connection": "close"},
                )
            return message

        await self.app(scope, counting, send)

    def _limit(self) -> str:
        return f"{size_in_words(self.limit)} per file"


async def drain(receive: Receive) -> None:
    """Read and discard the rest of a request body, within ``DRAIN_BYTES`` and ``DRAIN_SECONDS``."""
    discarded = 0
    with anyio.move_on_after(DRAIN_SECONDS):
        while discarded <= DRAIN_BYTES:
            message = await receive()
            discarded += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                return


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
