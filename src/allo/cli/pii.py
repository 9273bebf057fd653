"""``allo eval pii``: how well personal data is found, on a labelled JSONL set.

Scores (see ``allo.gateway.pii.evaluation``): precision and recall per kind, overall
and over the structured kinds (phone, e-mail, IBAN, NIR, card, customer and contract
ids), counted twice: ``exact`` (same kind and span) and ``overlap`` (same kind, at
least one character in common). ``seconds`` is the detection time, models loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from allo.cli.common import console, handle_errors

Data = Annotated[
    Path,
    typer.Option(
        "--data",
        exists=True,
        dir_okay=False,
        help='{"text", "entities": [{kind,start,end}]} lines.',
    ),
]


def pii(
    data: Data,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Precision and recall of personal-data detection, per kind, exact and overlapping."""
    from allo.gateway.pii import PiiDetector
    from allo.gateway.pii.evaluation import evaluate, load_labelled

    with handle_errors():
        items = load_labelled(data)
        detector = PiiDetector()
        with Progress(console=console, disable=as_json, transient=True) as progress:
            loading = progress.add_task("Loading the models", total=None)
            detector.warm_up()
            progress.remove_task(loading)
            task = progress.add_task("Texts", total=len(items))
            result = evaluate(detector, items, progress=lambda n: progress.advance(task, n))
    if as_json:
        print(json.dumps(result))
        return
    console.print(_table(result))
    structured = result["exact"]["structured"]
    console.print(
        f"[bold]structured[/bold] recall={structured['recall']} "
        f"precision={structured['precision']}  ({result['items']} texts, "
        f"{result['seconds']:.1f} s)"
    )


def _table(result: dict[str, Any]) -> Table:
    table = Table("kind", "P exact", "R exact", "P overlap", "R overlap", "labelled")
    rows = [*result["exact"]["per_kind"], "structured", "overall"]
    for row in rows:
        exact, overlap = (
            (result[m]["per_kind"][row] if row in result[m]["per_kind"] else result[m][row])
            for m in ("exact", "overlap")
        )
        table.add_row(
            row,
            _number(exact["precision"]),
            _number(exact["recall"]),
            _number(overlap["precision"]),
            _number(overlap["recall"]),
            str(exact["tp"] + exact["fn"]),
        )
    return table


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
