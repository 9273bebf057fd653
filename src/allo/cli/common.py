"""Shared helpers of the CLI: settings, the knowledge base, error display."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from allo.errors import AlloError, UserError

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


@contextmanager
def handle_errors() -> Iterator[None]:
    """Print Allo's errors without a traceback: exit 2 for the user's mistakes, 1 otherwise."""
    try:
        yield
    except AlloError as exc:
        # the message is text, not markup: "[source, target]" must print as it is
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2 if isinstance(exc, UserError) else 1) from exc
