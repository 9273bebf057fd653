"""Shared helpers of the CLI: settings, the knowledge base, error display."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from allo.errors import AlloError, InvalidInputError, UserError

if TYPE_CHECKING:
    from allo.config import Settings
    from allo.knowledge.service import KnowledgeBase

console = Console()
errors = Console(stderr=True)


def settings() -> Settings:
    """Settings from the environment; invalid ones stop the command with the exact field."""
    from allo.config import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = "ALLO_" + "__".join(str(part).upper() for part in error["loc"])
            errors.print(f"[red]invalid setting {field}[/red]: {escape(str(error['msg']))}")
        raise typer.Exit(2) from exc


@contextmanager
def knowledge_base() -> Iterator[KnowledgeBase]:
    """Open the configured knowledge base; errors become a clear message and exit code."""
    from allo.knowledge.service import KnowledgeBase

    with handle_errors():
        kb = KnowledgeBase(settings())
        try:
            yield kb
        finally:
            kb.close()


def writable(path: Path, *inputs: Path | None) -> None:
    """Refuse, before any work is done, an output that cannot be written: its folder is
    missing or read-only, or it is one of the command's own inputs (which writing it
    would destroy)."""
    folder = path.parent
    if not folder.is_dir():
        raise InvalidInputError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInputError(f"cannot write {path}: folder {folder} is not writable")
    for source in inputs:
        if source is not None and source.exists() and path.resolve() == source.resolve():
            raise InvalidInputError(f"{path} is also an input: write the output elsewhere")


@contextmanager
def handle_errors() -> Iterator[None]:
    """Print Allo's errors without a traceback: exit 2 for the user's mistakes, 1 otherwise.
    A file that cannot be read or written (a missing folder, no permission) is the user's
    to fix too: its message names it."""
    try:
        yield
    except OSError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    except AlloError as exc:
        # the message is text, not markup: "[source, target]" must print as it is
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2 if isinstance(exc, UserError) else 1) from exc
