"""``allo ask``: a cited answer from the knowledge base, in the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

import typer

from allo.cli.common import console, errors, knowledge_base
from allo.config import RetrievalMode
from allo.domain import Answer
from allo.gateway.call import Caller
from allo.knowledge.grounded import (
    AnswerEvent,
    FinalEvent,
    GroundedAnswer,
    ReplaceEvent,
    SentenceEvent,
)
from allo.messages import message

CLI_CALLER = Caller(user="cli", team="cli")


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
    model: Annotated[
        str | None,
        typer.Option(
            help="A model of `allo models list` to write the answer (default: extractive)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Answer a question from the documents only, citing them, or say it does not know."""
    with knowledge_base() as kb:
        if kb.store.count_documents() == 0:
            errors.print(
                "the knowledge base is empty: load documents with `allo ingest PATH` "
                "(or `allo demo` for the demo base)"
            )
        if not kb.uses_model(model):
            answer = kb.ask(question, mode)
            extra: dict[str, object] = {}
        elif as_json:
            grounded = kb.generate(question, model=model, caller=CLI_CALLER, mode=mode)
            answer, extra = grounded.answer, generation_json(grounded)
        else:
            answer = _stream(
                kb.generate_stream(question, model=model, caller=CLI_CALLER, mode=mode)
            )
            _print_sources(answer)
            return
    if as_json:
        console.print_json(json.dumps(answer_json(answer) | extra, ensure_ascii=False))
        return
    console.print(answer.text, highlight=False, markup=False)
    _print_sources(answer)


def generation_json(grounded: GroundedAnswer) -> dict[str, object]:
    """How a generated answer was made, as the HTTP API reports it."""
    return {
        "model": grounded.model,
        "generated": grounded.generated,
        "fallback": str(grounded.fallback) if grounded.fallback else None,
        "removed_sentences": grounded.removed_sentences,
        "data_class": grounded.data_class,
    }


def _stream(events: Iterator[AnswerEvent]) -> Answer:
    """Print checked sentences as they come; a replacement is printed after a notice."""
    for event in events:
        if isinstance(event, SentenceEvent):
            console.print(event.separator + event.text, end="", highlight=False, markup=False)
        elif isinstance(event, ReplaceEvent):
            if event.reason is not None:
                errors.print(f"\n[yellow]({event.reason}: extractive answer instead)[/yellow]")
            console.print(event.answer.text, end="", highlight=False, markup=False)
        elif isinstance(event, FinalEvent):
            console.print()
            result = event.result
            if result.generated:
                note = f"{result.model}, {result.removed_sentences} sentence(s) removed"
                errors.print(f"[dim]({note})[/dim]")
            return result.answer
    raise AssertionError("the answer stream ended without its result")  # pragma: no cover


def _print_sources(answer: Answer) -> None:
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
