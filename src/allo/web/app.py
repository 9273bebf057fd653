"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from allo import __version__
from allo.config import Settings
from allo.errors import NotFoundError
from allo.knowledge.service import KnowledgeBase
from allo.noc.engine import NocEngine
from allo.web.body_limit import BodyLimit
from allo.web.errors import error_body, install_error_handlers
from allo.web.headers import SecurityHeaders
from allo.web.routers import (
    ask,
    audit,
    chat_pages,
    conversations,
    conversations_ws,
    documents,
    models,
    noc,
    pages,
)

STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings, knowledge: KnowledgeBase | None = None, noc_engine: NocEngine | None = None
) -> FastAPI:
    """Build the app around a knowledge base (created from ``settings`` if not given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.knowledge.warm_up()
        sweeper = asyncio.create_task(noc.sweep_maintenance(app.state.noc))
        yield
        sweeper.cancel()
        with suppress(asyncio.CancelledError):
            await sweeper
        app.state.knowledge.close()
        app.state.noc.close()

    app = FastAPI(
        title="Allo",
        version=__version__,
        description="Answers from the operator's own documents, with citations.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.knowledge = knowledge or KnowledgeBase(settings)
    app.state.noc = noc_engine or noc.engine_for(settings)  # opened on first use
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    if settings.widget_origins:
        # Only the customer conversation API is meant for other sites (the widget);
        # credentials are never sent cross-origin, the customer token travels in a header.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.widget_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Customer-Token"],
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return JSONResponse(error_body("InvalidRequest", problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(
        request: Request, exc: StarletteHTTPException
    ) -> JSONResponse | HTMLResponse:
        return JSONResponse(error_body("HTTPError", str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse | HTMLResponse:
        if request.url.path.startswith("/v1/"):
            return JSONResponse(error_body("NotFoundError", str(exc)), status_code=404)
        return HTMLResponse("<h1>Document introuvable</h1><p><a href='/'>Retour</a></p>", 404)

    app.include_router(ask.router)
    app.include_router(models.router)
    app.include_router(audit.router)
    app.include_router(documents.router)
    app.include_router(pages.router)
    app.include_router(noc.router)
    app.include_router(conversations.router)
    app.include_router(conversations_ws.router)
    app.include_router(chat_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
