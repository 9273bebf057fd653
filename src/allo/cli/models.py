"""``allo models``: the declared language models and whether each can be used now."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from allo.cli.common import console, handle_errors, settings

app = typer.Typer(help="Language models behind the gateway.", no_args_is_help=True)


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each declared model: provider, where data goes, context, cost, reachable or why not."""
    from allo.gateway.registry import ModelRegistry

    config = settings()
    with handle_errors():
        statuses = ModelRegistry(config.gateway, cache_dir=config.cache_dir).statuses()
    if as_json:
        rows = [
            {
                "name": status.spec.name,
                "provider": str(status.spec.provider),
                "model": status.spec.model or status.spec.packaged or "",
                "location": str(status.spec.location),
                "context_length": status.spec.context_length,
                "cost_per_1k_input": status.spec.cost_per_1k_input,
                "cost_per_1k_output": status.spec.cost_per_1k_output,
                "default": status.is_default,
                "reachable": status.reachability.reachable,
                "detail": status.reachability.detail,
            }
            for status in statuses
        ]
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="Models")
    for column in ("name", "provider", "location", "context", "cost in/out per 1k", "status"):
        table.add_column(column)
    for status in statuses:
        spec = status.spec
        name = spec.name + (" (default)" if status.is_default else "")
        state = "[green]reachable[/green]" if status.reachability.reachable else "[red]no[/red]"
        if status.reachability.detail:
            state += f" — {status.reachability.detail}"
        table.add_row(
            name,
            f"{spec.provider} {spec.model or spec.packaged or ''}".strip(),
            str(spec.location),
            str(spec.context_length),
            f"{spec.cost_per_1k_input:g} / {spec.cost_per_1k_output:g}",
            state,
        )
    console.print(table)
