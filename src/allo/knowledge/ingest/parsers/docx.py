"""Word documents through python-docx: heading styles, numbered lists as steps, tables."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.opc.exceptions import PackageNotFoundError

from allo.domain import ParsedDocument
from allo.errors import CorruptFileError
from allo.knowledge.ingest.parsers.base import title_from_name
from allo.knowledge.ingest.parsers.sections import SectionBuilder

_HEADING_STYLE = re.compile(r"^(?:Heading|Titre)\s*(\d)", re.I)


def parse_docx(data: bytes, name: str) -> list[ParsedDocument]:
    """Parse a .docx file."""
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CorruptFileError(f"{name}: not a readable .docx file ({exc})") from exc
    builder = SectionBuilder()
    title = (document.core_properties.title or "").strip()
    step = 0
    for paragraph in document.paragraphs:
        text = " ".join(paragraph.text.split())
        style = paragraph.style.name if paragraph.style is not None else ""
        if not text:
            continue
        heading = _HEADING_STYLE.match(style or "")
        if style == "Title":
            title = title or text
            builder.heading(1, text)
        elif heading:
            title = title or text
            builder.heading(int(heading.group(1)), text)
            step = 0
        elif "List Number" in (style or ""):
            step += 1
            builder.block(f"{step}. {text}", "steps")
        elif "List" in (style or ""):
            builder.block(f"- {text}", "list")
        else:
            step = 0
            builder.block(text)
    for table in document.tables:
        rows = [
            "| " + " | ".join(cell.text.strip() for cell in row.cells) + " |" for row in table.rows
        ]
        builder.block("\n".join(rows), "table")
    return [ParsedDocument(title=title or title_from_name(name), sections=builder.sections())]
