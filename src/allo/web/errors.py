"""Allo's exceptions as HTTP responses: the caller's mistakes are 4xx, failures 5xx."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from allo.errors import (
    AlloError,
    BudgetExceededError,
    FileTooLargeError,
    NotFoundError,
    PolicyRefusal,
    RateLimitedError,
    RuntimeFailure,
    UnsupportedFormatError,
    UserError,
)


def status_for(error: AlloError) -> int:
    """The HTTP status of an error."""
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, FileTooLargeError):
        return 413
    if isinstance(error, UnsupportedFormatError):
        return 415
    if isinstance(error, PolicyRefusal):
        return 403
    if isinstance(error, BudgetExceededError | RateLimitedError):
        return 429
    if isinstance(error, UserError):
        return 422
    if isinstance(error, RuntimeFailure) and error.retryable:
        return 503
    return 500


def error_body(kind: str, message: str) -> dict[str, dict[str, str]]:
    """The one error shape of the API."""
    return {"error": {"type": kind, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    """Map every ``AlloError`` to a JSON error with the right status."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AlloError)
        headers = (
            {"Retry-After": str(max(1, round(exc.retry_after)))}
            if isinstance(exc, RateLimitedError)
            else None
        )
        return JSONResponse(
            error_body(type(exc).__name__, str(exc)), status_code=status_for(exc), headers=headers
        )

    app.add_exception_handler(AlloError, handle)


def upgrade_required() -> JSONResponse:
    """The answer of a WebSocket path to a plain GET: 426 and how to connect.

    Such GET operations exist only to document the sockets in ``/openapi.json``
    (``x-websocket``), which has no WebSocket operations of its own.
    """
    return JSONResponse(
        error_body(
            "UpgradeRequired",
            "this path is a WebSocket: connect with ws:// or wss:// "
            "(frames: x-websocket in /openapi.json)",
        ),
        status_code=426,
        headers={"Upgrade": "websocket"},
    )
