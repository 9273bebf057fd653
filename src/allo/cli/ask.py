"""``allo ask``: a cited answer from the knowledge base, in the terminal."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from allo.cli.common import console, errors, knowledge_base
from allo.config import RetrievalMode
from allo.domain import Answer
from allo.messages import message


def answer_json(answer: Answer) -> dict[str, object]:
    """The answer as the HTTP API returns it."""
    return {
        "answer": answer.text,
        "lang": answer.lang,
        "abstained": answer.abstained,
        "confidence": round(answer.confidence, 4),
        "mode": answer.mode,
        "citations": [
            {
                "number": c.number,
                "document_id": c.document_id,
                "chunk_id": c.chunk_id,
                "title": c.title,
                "source": c.source,
                "heading_path": list(c.heading_path),
                "excerpt": c.excerpt,
                "score": round(c.score, 6),
                "url": c.url,
            }
            for c in answer.citations
        ],
    }


def ask(
    question: Annotated[str, typer.Argument(help="The question, in French or English.")],
    mode: Annotated[RetrievalMode | None, typer.Option(help="Retrieval mode.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Answer a question from the documents only, citing them, or say it does not know."""
    with knowledge_base() as kb:
        answer = kb.ask(question, mode)
        if kb.store.count_documents() == 0:
            errors.print(
                "the knowledge base is empty: load documents with `allo ingest PATH` "
                "(or `allo demo` for the demo base)"
            )
    if as_json:
        console.print_json(json.dumps(answer_json(answer), ensure_ascii=False))
        return
    console.print(answer.text, highlight=False, markup=False)
    if answer.citations:
        console.print(f"\n[bold]{message('sources', answer.lang)}[/bold]")
        for citation in answer.citations:
            where = " > ".join(citation.heading_path[1:]) if len(citation.heading_path) > 1 else ""
            suffix = f" — {where}" if where else ""
            console.print(
                f"[{citation.number}] {citation.title}{suffix}", highlight=False, markup=False
            )
            console.print(
                f"    {citation.url or citation.source}", style="dim", highlight=False, markup=False
            )
