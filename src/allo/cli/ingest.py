"""``allo ingest``: load files and folders into the knowledge base, with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from allo.cli.common import console, knowledge_base
from allo.knowledge.ingest.loader import IngestReport


def print_report(report: IngestReport) -> None:
    """The final report: counts, then every failure with its reason."""
    table = Table(title="Ingestion", show_header=False)
    table.add_row("added", str(len(report.added)))
    table.add_row("updated", str(len(report.updated)))
    table.add_row("unchanged (skipped)", str(len(report.unchanged)))
    table.add_row("pruned", str(len(report.pruned)))
    table.add_row("failed", str(len(report.failed)))
    table.add_row("chunks written", str(report.chunks))
    console.print(table)
    for source, reason in report.failed:
        console.print(f"[red]failed[/red] {source}: {reason}", highlight=False)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to load.")],
    prune: Annotated[
        bool, typer.Option(help="Remove documents whose source file is gone.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Re-index even unchanged documents.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Load Markdown, HTML, PDF, DOCX, text and JSON lines files into the knowledge base."""
    with knowledge_base() as kb:
        if kb.embedder is not None:
            with console.status("Loading the embedding model…"):
                kb.embedder.warm_up()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as progress:
            task = progress.add_task("Ingesting", total=None)
            report = kb.ingest(
                paths,
                prune=prune,
                force=force,
                on_start=lambda total: progress.update(task, total=total),
                on_file=lambda _source: progress.advance(task),
            )
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        print_report(report)
    if report.failed:
        raise typer.Exit(1)
