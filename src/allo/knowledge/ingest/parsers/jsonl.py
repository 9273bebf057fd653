"""JSON lines: one document per line, ``{"id","title","text"}`` plus optional url, lang, tags."""

from __future__ import annotations

import json

from allo.domain import ParsedDocument
from allo.errors import InvalidInputError
from allo.knowledge.ingest.parsers.base import decode_text
from allo.knowledge.ingest.parsers.markdown import parse_markdown_text


def _record(line: str, number: int, name: str) -> ParsedDocument:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{name} line {number}: invalid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise InvalidInputError(f"{name} line {number}: expected an object with id, title, text")
    missing = [key for key in ("id", "text") if not record.get(key)]
    if missing:
        raise InvalidInputError(f"{name} line {number}: missing {', '.join(missing)}")
    text = str(record["text"])
    title = str(record.get("title") or record["id"])
    parsed = parse_markdown_text(text, f"{name}#{record['id']}")
    tags = record.get("tags") or []
    return ParsedDocument(
        title=title,
        sections=parsed.sections,
        lang=str(record["lang"]) if record.get("lang") else None,
        tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (str(tags),),
        url=str(record["url"]) if record.get("url") else None,
        external_id=str(record["id"]),
    )


def parse_jsonl(data: bytes, name: str) -> list[ParsedDocument]:
    """Parse every line; one bad line fails the file, naming the line (nothing half-loaded)."""
    text = decode_text(data, name)
    documents = [
        _record(line, number, name)
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]
    seen: set[str] = set()
    for document in documents:
        if document.external_id in seen:
            raise InvalidInputError(f"{name}: id {document.external_id!r} appears twice")
        seen.add(document.external_id or "")
    return documents
