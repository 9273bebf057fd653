"""A bound on request bodies, enforced while they arrive.

FastAPI reads a JSON body whole before any route code runs, so a route cannot refuse a
body that is too large: it is already in memory. This middleware counts the bytes as
they arrive and stops the request with a 413 once they pass the limit, whether the
client declared a ``Content-Length`` or sent the body in chunks. Document uploads have
their own, larger limit (``ALLO_MAX_FILE_BYTES``, read in bounded chunks) and are left
to it.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from allo.web.errors import error_body

#: the largest request body, uploads aside
MAX_BODY_BYTES = 10 * 1024 * 1024
_UPLOADS = ("/v1/documents",)


def _message(limit: int) -> str:
    return f"body over {limit} bytes: send smaller requests (batches)"


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a 413 (see the module docstring)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(_UPLOADS):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                # a 413 in the API's error shape, sent before the body is read at all
                refusal = JSONResponse(error_body("PayloadTooLarge", _message(limit)), 413)
                await refusal(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI passes an HTTPException raised while it reads the body on
                    # to the app's handler, which answers with the JSON error shape
                    raise HTTPException(413, _message(limit))
            return message

        await self.app(scope, counted, send)
