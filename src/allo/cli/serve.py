"""``allo serve`` and ``allo demo``: the web app on one machine."""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from allo.cli.common import console, handle_errors, knowledge_base, settings
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
#: ``allo.knowledge.index.e5_onnx.THREADS_VARIABLE``, named here without importing ONNX
THREADS_VARIABLE = "ALLO_ONNX_THREADS"
#: seconds a thread may hold the GIL while another waits for it, in server processes
SWITCH_INTERVAL = 0.0005


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
    app.state.knowledge.warm_up()  # what the app's start-up does too (idempotent)
    settle_heap()
    return app


def settle_heap() -> None:
    """Tune a server process once it has loaded everything (called by ``app_factory``).

    - ``gc.freeze()``: the models, the classifier and the indexes are millions of objects
      that live as long as the process; each full collection walked them all, a pause of
      ~0.1-0.2 s in the middle of some request (measured under
      ``benchmarks/chat_load.py``). Frozen, they are never scanned again; what requests
      allocate is collected as before.
    - a GIL switch interval of :data:`SWITCH_INTERVAL` instead of 5 ms: a thread that
      comes back from SQLite or ONNX Runtime waits up to the interval for the GIL, and the
      thread writing a conversation holds the writers' lock meanwhile. With two threads
      busy in Python, a conversation write took 6-7 ms on average at 5 ms and ~1.1 ms at
      0.5 ms (in process, 150 writes).
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)


def worker_threads(workers: int, cores: int | None = None) -> int:
    """ONNX Runtime threads per embedding call for ``workers`` processes on ``cores`` cores."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not on Linux
            cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def serve(
    host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = 1, access_log: AccessLog = True
) -> None:
    """Serve the API, the chat and the question page."""
    import uvicorn

    settings()  # invalid settings stop here, with the exact field, before any worker starts
    if workers > 1:
        # the workers inherit it; an operator's own value wins
        os.environ.setdefault(THREADS_VARIABLE, str(worker_threads(workers)))
        console.print(
            "[yellow]note:[/yellow] the NOC engine runs in one worker only (the first asked "
            "for it); NOC requests that reach another worker get a 503. Serve the NOC with "
            "--workers 1, or send alarms through the broker (allo noc consume).",
            highlight=False,
        )
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
    _demo_noc(host, port)
    serve(host=host, port=port, workers=workers)


def _demo_noc(host: str, port: int) -> None:
    """Seed the NOC console with the demo network (allo.noc.demo) and give it a token."""
    import secrets

    from allo.clock import SystemClock
    from allo.noc.demo import seed

    config = settings()
    with handle_errors(), console.status("Simulating the demo network's alarms…"):
        network = seed(config.resolved_database_url, config.data_dir / "noc", SystemClock())
    if not network.skipped:
        console.print(
            f"NOC demo: {network.alarms} alarms of a fictional network → {network.incidents} "
            f"incidents ({network.edges} causal edges learned)",
            highlight=False,
        )
    if config.noc_token is None and not config.noc_operators:
        # the console needs a token; a fresh one for this run, never a fixed one
        os.environ["ALLO_NOC_TOKEN"] = secrets.token_urlsafe(12)
        console.print(
            f"NOC console: http://{host}:{port}/noc  (token: {os.environ['ALLO_NOC_TOKEN']})",
            highlight=False,
        )
