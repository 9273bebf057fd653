"""Markdown, with optional YAML front matter (title, tags, lang, url)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from allo.domain import ParsedDocument
from allo.errors import InvalidInputError
from allo.knowledge.ingest.parsers.base import decode_text, title_from_name
from allo.knowledge.ingest.parsers.sections import SectionBuilder

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE = re.compile(r"(\*\*|__|`)")
_EMPHASIS = re.compile(r"(?<![\w*])[*_](?=\S)([^*_\n]+?)(?<=\S)[*_](?![\w*])")
_QUOTE = re.compile(r"^\s*>\s?")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def _front_matter(text: str, name: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return {}, text
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{name}: invalid YAML front matter ({exc})") from exc
    if not isinstance(meta, dict):
        raise InvalidInputError(f"{name}: front matter must be a mapping of fields")
    body = text[end + 4 :]
    return meta, body.split("\n", 1)[1] if "\n" in body else ""


def _clean(line: str) -> str:
    """Drop emphasis, quote marks and link targets: search and answers want the words only."""
    return _INLINE.sub("", _EMPHASIS.sub(r"\1", _LINK.sub(r"\1", _QUOTE.sub("", line))))


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(tag.strip() for tag in value.split(",") if tag.strip())
    if isinstance(value, list):
        return tuple(str(tag).strip() for tag in value if str(tag).strip())
    return ()


def parse_markdown_text(text: str, name: str) -> ParsedDocument:
    """Parse Markdown already decoded to text."""
    meta, body = _front_matter(text, name)
    builder = SectionBuilder()
    first_title: str | None = None
    pending: list[str] = []
    in_fence = False

    def flush() -> None:
        builder.lines(pending)
        pending.clear()

    for raw in body.splitlines():
        if _FENCE.match(raw):
            in_fence = not in_fence
            continue
        heading = None if in_fence else _HEADING.match(raw)
        if heading:
            flush()
            title = _clean(heading.group(2))
            first_title = first_title or title
            builder.heading(len(heading.group(1)), title)
        else:
            pending.append(_clean(raw))
    flush()
    title = str(meta.get("title") or first_title or title_from_name(name))
    lang = meta.get("lang")
    url = meta.get("url")
    return ParsedDocument(
        title=title,
        sections=builder.sections(),
        lang=str(lang) if lang else None,
        tags=_tags(meta.get("tags")),
        url=str(url) if url else None,
    )


def parse_markdown(data: bytes, name: str) -> list[ParsedDocument]:
    """Parse a Markdown file."""
    return [parse_markdown_text(decode_text(data, name), name)]


def parse_plain_text(data: bytes, name: str) -> list[ParsedDocument]:
    """Plain text: blocks at blank lines; the first short line serves as the title."""
    text = decode_text(data, name)
    builder = SectionBuilder()
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    title = first if 0 < len(first) <= 120 else title_from_name(name)
    builder.lines(lines)
    return [ParsedDocument(title=title, sections=builder.sections())]
