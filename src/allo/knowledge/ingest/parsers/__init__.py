"""Parsers by file type, and ``parse_file`` which picks one and applies the input checks."""

from __future__ import annotations

import importlib
from pathlib import PurePath

from allo.domain import ParsedDocument
from allo.errors import EmptyDocumentError, UnsupportedFormatError
from allo.knowledge.ingest.parsers.base import Parser

# Suffix -> "module:function". Parsers load on first use: PDF and Word libraries cost a
# quarter of a second to import, which `allo ask` should not pay.
PARSERS: dict[str, str] = {
    ".md": "markdown:parse_markdown",
    ".markdown": "markdown:parse_markdown",
    ".html": "html:parse_html",
    ".htm": "html:parse_html",
    ".pdf": "pdf:parse_pdf",
    ".docx": "docx:parse_docx",
    ".txt": "markdown:parse_plain_text",
    ".text": "markdown:parse_plain_text",
    ".jsonl": "jsonl:parse_jsonl",
    ".ndjson": "jsonl:parse_jsonl",
}

SUPPORTED_SUFFIXES = frozenset(PARSERS)

__all__ = ["PARSERS", "SUPPORTED_SUFFIXES", "parse_bytes"]


def _parser(target: str) -> Parser:
    module_name, function = target.split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    parser: Parser = getattr(module, function)
    return parser


def parse_bytes(data: bytes, name: str) -> list[ParsedDocument]:
    """Parse ``data`` by the suffix of ``name``; every document must have some text."""
    suffix = PurePath(name).suffix.lower()
    target = PARSERS.get(suffix)
    if target is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFormatError(
            f"{name}: unsupported file type {suffix or '(none)'}; supported: {supported}"
        )
    if not data.strip():
        raise EmptyDocumentError(f"{name}: the file is empty")
    documents = _parser(target)(data, name)
    if not documents or all(not doc.text.strip() for doc in documents):
        raise EmptyDocumentError(f"{name}: no text found (a scanned PDF needs OCR first)")
    return documents
