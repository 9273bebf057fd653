"""``allo serve`` and ``allo demo``: the web app on one machine."""

from __future__ import annotations

from typing import Annotated

import typer

from allo.cli.common import console, knowledge_base, settings
from allo.cli.ingest import print_report

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="TCP port.")]


def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Serve the API and the question page."""
    import uvicorn

    from allo.web.app import create_app

    app = create_app(settings())
    console.print(f"Allo is listening on http://{host}:{port}  (API docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")


def demo(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Load the bundled demo knowledge base (fictional operator), then serve it."""
    with knowledge_base() as kb:
        with console.status("Loading the demo knowledge base (first run embeds ~50 articles)…"):
            report = kb.load_demo()
        print_report(report)
    serve(host=host, port=port)
