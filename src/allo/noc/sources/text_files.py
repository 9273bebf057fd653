"""Alarm files opened as text: UTF-8, with what is not UTF-8 shown rather than hidden.

Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``) rather than
replaced by U+FFFD: a reader then makes that row a malformed stand-in naming the problem
(:func:`undecodable`), instead of silently merging ``RTR-é`` and ``RTR-è`` of a Latin-1
file into one ``RTR-?``. A UTF-16 file would be all such rows, so it is refused whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from allo.errors import InvalidInputError
from allo.noc.sources.base import valid_unicode


def open_text(path: Path, what: str) -> TextIO:
    """``path`` opened for reading lines as UTF-8 (a byte-order mark is skipped); ``what``
    names it in errors."""
    if not path.is_file():
        raise InvalidInputError(f"{what} {path} not found: check the path")
    with path.open("rb") as raw:
        start = raw.read(2)
    if start in (b"\xff\xfe", b"\xfe\xff"):
        raise InvalidInputError(f"{what} {path} is UTF-16 text: save it as UTF-8")
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def undecodable(line: str) -> str | None:
    """Why a line read by :func:`open_text` cannot be used, or ``None``."""
    if valid_unicode(line):
        return None
    return "not UTF-8 text (bytes of another encoding): save the file as UTF-8"
