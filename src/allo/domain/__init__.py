"""Typed records shared by every part of Allo; this package imports nothing of the project."""

from allo.domain.knowledge import (
    Answer,
    Chunk,
    Citation,
    Document,
    ParsedDocument,
    Passage,
    Section,
)

__all__ = ["Answer", "Chunk", "Citation", "Document", "ParsedDocument", "Passage", "Section"]
