"""``allo serve`` and ``allo demo``: the web app on one machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from allo.cli.common import console, knowledge_base, settings
from allo.cli.ingest import print_report

if TYPE_CHECKING:
    from fastapi import FastAPI

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="TCP port.")]
Workers = Annotated[
    int,
    typer.Option(
        min=1,
        help="Worker processes (each loads the models and trains the intent classifier, "
        "~0.5 GB of memory each); more than the CPU cores never helps.",
    ),
]
AccessLog = Annotated[bool, typer.Option(help="Log every request (one line each).")]


def app_factory() -> FastAPI:
    """The app each server process runs, its chat assistant built before the first request.

    Building the assistant trains the intent classifier (seconds); doing it here rather
    than on the first message means no customer waits for it, in every worker process.
    """
    from allo.assistant.session import build_assistant
    from allo.web.app import create_app

    app = create_app(settings())
    app.state.assistant = build_assistant(app.state.knowledge)
    app.state.assistant.warm_up()
    return app


def serve(
    host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = 1, access_log: AccessLog = True
) -> None:
    """Serve the API, the chat and the question page."""
    import uvicorn

    settings()  # invalid settings stop here, with the exact field, before any worker starts
    console.print(f"Allo is listening on http://{host}:{port}  (API docs: /docs)")
    uvicorn.run(
        "allo.cli.serve:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
    )


def demo(host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = 1) -> None:
    """Load the bundled demo knowledge base (fictional operator), then serve it."""
    with knowledge_base() as kb:
        with console.status("Loading the demo knowledge base (first run embeds ~50 articles)…"):
            report = kb.load_demo()
        print_report(report)
    serve(host=host, port=port, workers=workers)
