"""PDF files through pypdf: text per page, blocks at blank lines; encrypted files refused."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

from allo.domain import ParsedDocument
from allo.errors import CorruptFileError
from allo.knowledge.ingest.parsers.base import title_from_name
from allo.knowledge.ingest.parsers.sections import SectionBuilder

logging.getLogger("pypdf").setLevel(logging.ERROR)


def parse_pdf(data: bytes, name: str) -> list[ParsedDocument]:
    """Parse a PDF; the document title comes from its metadata or its first line."""
    if not data.lstrip().startswith(b"%PDF"):
        raise CorruptFileError(f"{name}: not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise CorruptFileError(
                f"{name}: the PDF is encrypted; export an unprotected copy and ingest that"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except CorruptFileError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptFileError(f"{name}: corrupt or unreadable PDF ({exc})") from exc
    builder = SectionBuilder()
    for page in pages:
        builder.lines(page.splitlines())
    sections = builder.sections()
    first_line = sections[0].text.splitlines()[0].strip() if sections else ""
    title = (meta_title or "").strip() or (
        first_line if 0 < len(first_line) <= 120 else title_from_name(name)
    )
    return [ParsedDocument(title=title, sections=sections)]
