"""``allo test conversations DIR``: play conversation stories on the assistant.

Exit codes: 0 every story passed, 1 a story failed, 2 invalid story files (or settings,
or an empty knowledge base).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from allo.cli.common import console, errors, knowledge_base

if TYPE_CHECKING:
    from allo.assistant.stories import RunReport

app = typer.Typer(help="Test the assistant end to end.", no_args_is_help=True)


@app.callback()
def test() -> None:
    """Test the assistant end to end (a group, so that more test kinds can join it)."""


@app.command()
def conversations(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="A story file, or a folder of *.yaml story files (default: the demo stories)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failing story.")
    ] = False,
) -> None:
    """Play conversation stories (user says X -> assistant does Y) and report failures."""
    from allo.assistant.stories import StoryFileError, demo_stories, load_stories, runner_for

    try:
        stories = load_stories(folder or demo_stories())
    except StoryFileError as error:
        _invalid(error, as_json)
    with knowledge_base() as kb:
        if kb.store.count_documents() == 0:
            errors.print(
                "error: the knowledge base is empty, so no story can be answered from it: "
                "load the demo base with `allo demo` or your documents with "
                "`allo ingest PATH`, then run this command again"
            )
            raise typer.Exit(2)
        with console.status("Training the intent classifier…"):
            runner, intents = runner_for(kb)
        try:
            runner.check(stories, intents)
        except StoryFileError as error:
            _invalid(error, as_json)
        report = runner.run(stories, fail_fast=fail_fast)
    if as_json:
        console.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print(report)
    if report.failed:
        raise typer.Exit(1)


def _invalid(error: Exception, as_json: bool) -> None:
    problems = list(getattr(error, "problems", [str(error)]))
    if as_json:
        console.print_json(json.dumps({"valid": False, "problems": problems}, ensure_ascii=False))
    else:
        errors.print(f"[red]error:[/red] {len(problems)} problem(s) in the story files")
        for problem in problems:
            errors.print(f"  {problem}", highlight=False, markup=False)
    raise typer.Exit(2)


def _print(report: RunReport) -> None:
    for result in report.results:
        mark = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {result.story.name}  [dim]{result.story.file.name}[/dim]")
        failure = result.failure
        if failure is None:
            continue
        lines = [
            f"step {failure.step} ({failure.said}): {failure.check}",
            f"expected: {failure.expected}",
            f"actual:   {failure.actual}",
        ]
        if failure.reply:
            lines.append("reply:    " + failure.reply.replace("\n", "\n          "))
        for line in lines:
            console.print("    " + line, highlight=False, markup=False)
    colour = "green" if not report.failed else "red"
    console.print(
        f"[{colour}]{report.passed} passed, {report.failed} failed[/{colour}] "
        f"({len(report.results)} stories, {report.seconds:.1f} s)"
    )
