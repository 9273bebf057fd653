"""The ``allo`` Typer application: each command group lives in its own module."""

from __future__ import annotations

import typer

from allo.cli import ask, audit, documents, evaluate, ingest, models, noc, serve, stories

app = typer.Typer(
    name="allo",
    help="Allo: AI customer relations for telecom operators (French first).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(ingest.ingest)
app.command()(ask.ask)
app.command()(serve.serve)
app.command()(serve.demo)
app.add_typer(documents.app, name="documents")
app.add_typer(evaluate.app, name="eval")
app.add_typer(noc.app, name="noc")
app.add_typer(models.app, name="models")
app.add_typer(audit.app, name="audit")
app.add_typer(stories.app, name="test")


def main() -> None:
    """Console-script entry point."""
    app()
