"""``allo eval generation``: generated answers and the support check, measured on PIAF."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from allo.cli.common import console, handle_errors, knowledge_base, settings
from allo.config import RetrievalMode

Corpus = Annotated[Path, typer.Option(exists=True, dir_okay=False, help="{id,title,text} lines.")]
Questions = Annotated[
    Path,
    typer.Option(exists=True, dir_okay=False, help="{question,paragraph_id,answers} lines."),
]


def generation(
    corpus: Corpus,
    questions: Questions,
    model: Annotated[
        str, typer.Option(help="A declared model (allo models list), e.g. qwen-0.5b.")
    ],
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N questions (a model is slow).")
    ] = 40,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    mode: Annotated[RetrievalMode, typer.Option(help="Retrieval mode.")] = RetrievalMode.HYBRID,
    support: Annotated[
        bool, typer.Option(help="Also build the labelled set and measure the support check.")
    ] = True,
    labelled: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Reuse a labelled set saved earlier with --save."),
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Folder to write records.jsonl and labelled.jsonl."),
    ] = None,
) -> None:
    """Share of generated answers containing the gold answer, fallbacks, abstentions, and
    the support check's catch and false-flag rates (threshold chosen on even questions,
    reported on odd ones)."""
    from allo.cli.evaluate import _index
    from allo.evaluation.generation import (
        build_support_set,
        evaluate_generation,
        evaluate_support,
        load_labelled,
        load_qa,
        save_labelled,
    )
    from allo.knowledge.answer import ExtractiveAnswerer
    from allo.knowledge.grounded import GroundedAnswerer, SupportChecker

    config = settings()
    with handle_errors():
        started = time.perf_counter()
        index = _index(corpus, [mode])
        items = load_qa(questions)[:limit]
        extractive = ExtractiveAnswerer(
            abstain_below=config.answer.abstain_below,
            max_citations=config.answer.max_citations,
        )
        with (
            knowledge_base() as kb,
            Progress(console=console, disable=as_json, transient=True) as progress,
        ):
            answerer = GroundedAnswerer(kb.gateway, extractive, models=config.gateway)
            task = progress.add_task("Answers", total=len(items))
            report: dict[str, object] = {"model": model, "mode": mode.value}
            report["generation"] = evaluate_generation(
                index,
                items,
                answerer,
                model=model,
                mode=mode,
                progress=lambda n: progress.advance(task, n),
            )
            if support:
                if labelled is not None:
                    sentences = load_labelled(labelled)
                else:
                    task = progress.add_task("Labelled set", total=len(items))
                    sentences = build_support_set(
                        index,
                        corpus,
                        items,
                        answerer,
                        model=model,
                        mode=mode,
                        progress=lambda n: progress.advance(task, n),
                    )
                report["support"] = evaluate_support(
                    sentences, SupportChecker(embedder=index.embedder)
                )
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    save_labelled(sentences, save / "labelled.jsonl")
        records = report["generation"]["records"]  # type: ignore[index]
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            with (save / "records.jsonl").open("w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        report["generation"] = report["generation"]["summary"]  # type: ignore[index]
        report["seconds"] = round(time.perf_counter() - started, 1)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    _print(report)


def _print(report: dict[str, object]) -> None:
    summary = report["generation"]
    assert isinstance(summary, dict)
    console.print(f"[bold]generation[/bold] ({report['model']}, {report['mode']})")
    for key, value in summary.items():
        console.print(f"  {key} = {value}", highlight=False)
    support = report.get("support")
    if isinstance(support, dict):
        for name in ("lexical", "embedding"):
            part = support.get(name)
            if isinstance(part, dict):
                held = part["held_out_odd"]
                chosen = {
                    k: v
                    for k, v in part.items()
                    if k not in ("chosen_on_even", "held_out_odd", "curve_odd")
                }
                console.print(
                    f"[bold]support check, {name}[/bold] {chosen}: held-out catch rate "
                    f"{held['catch_rate']}, false-flag rate {held['false_flag_rate']} "
                    f"({held['n_unsupported']} unsupported / {held['n_supported']} supported)",
                    highlight=False,
                )
    console.print(f"({report['seconds']} s)")
