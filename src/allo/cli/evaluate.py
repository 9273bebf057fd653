"""``allo eval``: quality measures on public data sets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from allo.cli import noc
from allo.cli.common import console, handle_errors, settings
from allo.cli.generation import generation
from allo.cli.intents import intents
from allo.cli.pii import pii
from allo.config import RetrievalMode

app = typer.Typer(help="Measure Allo on evaluation data.", no_args_is_help=True)
app.command("causal")(noc.causal)
app.command("intents")(intents)
app.command("pii")(pii)
app.command("generation")(generation)

Corpus = Annotated[Path, typer.Option(exists=True, dir_okay=False, help="{id,title,text} lines.")]
Questions = Annotated[
    Path, typer.Option(exists=True, dir_okay=False, help="{question,paragraph_id} lines.")
]


def _index(corpus: Path, modes: list[RetrievalMode]):  # type: ignore[no-untyped-def]
    from allo.config import EmbedderKind
    from allo.evaluation.retrieval import EvaluationIndex
    from allo.knowledge.index.embedding import make_embedder
    from allo.storage import open_store

    config = settings()
    needs_dense = any(mode is not RetrievalMode.LEXICAL for mode in modes)
    kind = config.embedder if needs_dense else EmbedderKind.NONE
    embedder = make_embedder(kind, config.cache_dir)
    cache = (
        open_store(f"sqlite:///{(config.cache_dir / 'embeddings.db').resolve()}")
        if embedder
        else None
    )
    return EvaluationIndex(corpus, embedder, config.retrieval, cache)


@app.command("retrieval")
def retrieval(
    corpus: Corpus,
    questions: Questions,
    mode: Annotated[list[RetrievalMode] | None, typer.Option(help="Repeat for several.")] = None,
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
) -> None:
    """recall@1/5/k, MRR@k and nDCG@k of each retrieval mode."""
    from allo.evaluation.retrieval import evaluate_retrieval, load_questions

    modes = mode or [RetrievalMode.LEXICAL, RetrievalMode.DENSE, RetrievalMode.HYBRID]
    with handle_errors():
        started = time.perf_counter()
        index = _index(corpus, modes)
        items = load_questions(questions)[:limit]
        with Progress(console=console, disable=as_json, transient=True) as progress:
            task = progress.add_task("Questions", total=len(items) * len(modes))
            results = evaluate_retrieval(
                index, items, modes, k, progress=lambda n: progress.advance(task, n)
            )
    if as_json:
        print(json.dumps(results))
        return
    for name, metrics in results.items():
        console.print(
            f"[bold]{name}[/bold] " + "  ".join(f"{key}={value}" for key, value in metrics.items())
        )
    console.print(f"({time.perf_counter() - started:.1f} s)")


@app.command("abstention")
def abstention(
    corpus: Corpus,
    questions: Questions,
    mode: Annotated[RetrievalMode, typer.Option()] = RetrievalMode.HYBRID,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
) -> None:
    """Wrong-answer and wrong-abstention rates across thresholds (gold paragraph hidden)."""
    from allo.evaluation.retrieval import abstention_curve, load_questions

    with handle_errors():
        index = _index(corpus, [mode])
        items = load_questions(questions)[:limit]
        configured = settings().answer.abstain_below
        thresholds = sorted({round(0.05 * step, 2) for step in range(0, 20)} | {configured})
        print(json.dumps(abstention_curve(index, items, mode, thresholds)))
