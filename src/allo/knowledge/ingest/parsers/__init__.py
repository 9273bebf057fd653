"""Parsers by file type, and ``parse_file`` which picks one and applies the input checks."""

from __future__ import annotations

from pathlib import PurePath

from allo.domain import ParsedDocument
from allo.errors import EmptyDocumentError, UnsupportedFormatError
from allo.knowledge.ingest.parsers.base import Parser
from allo.knowledge.ingest.parsers.docx import parse_docx
from allo.knowledge.ingest.parsers.html import parse_html
from allo.knowledge.ingest.parsers.jsonl import parse_jsonl
from allo.knowledge.ingest.parsers.markdown import parse_markdown, parse_plain_text
from allo.knowledge.ingest.parsers.pdf import parse_pdf

PARSERS: dict[str, Parser] = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".txt": parse_plain_text,
    ".text": parse_plain_text,
    ".jsonl": parse_jsonl,
    ".ndjson": parse_jsonl,
}

SUPPORTED_SUFFIXES = frozenset(PARSERS)

__all__ = ["PARSERS", "SUPPORTED_SUFFIXES", "parse_bytes"]


def parse_bytes(data: bytes, name: str) -> list[ParsedDocument]:
    """Parse ``data`` by the suffix of ``name``; every document must have some text."""
    suffix = PurePath(name).suffix.lower()
    parser = PARSERS.get(suffix)
    if parser is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFormatError(
            f"{name}: unsupported file type {suffix or '(none)'}; supported: {supported}"
        )
    if not data.strip():
        raise EmptyDocumentError(f"{name}: the file is empty")
    documents = parser(data, name)
    if not documents or all(not doc.text.strip() for doc in documents):
        raise EmptyDocumentError(f"{name}: no text found (a scanned PDF needs OCR first)")
    return documents
