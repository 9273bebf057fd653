"""``allo documents``: list, show and delete stored documents."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from allo.cli.common import console, knowledge_base

app = typer.Typer(help="List, show and delete documents.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def list_documents(
    ctx: typer.Context,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List documents (title, language, chunks, id)."""
    if ctx.invoked_subcommand is not None:
        return
    with knowledge_base() as kb:
        documents = kb.documents(offset=offset, limit=limit)
        total = kb.store.count_documents()
    table = Table(title=f"Documents {offset + 1}-{offset + len(documents)} of {total}")
    for column in ("title", "lang", "chunks", "id", "source"):
        table.add_column(column)
    for doc in documents:
        table.add_row(doc.title, doc.lang, str(doc.chunk_count), doc.id, doc.source)
    console.print(table)


@app.command("delete")
def delete(document_id: str) -> None:
    """Delete one document by id."""
    with knowledge_base() as kb:
        kb.delete(document_id)
    console.print(f"deleted {document_id}")
