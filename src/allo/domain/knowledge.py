"""Records of the knowledge engine: documents, their chunks, retrieved passages, answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Section:
    """A piece of a parsed document under one heading path, before chunking.

    ``kind`` is ``"text"`` for prose, ``"steps"`` for a numbered procedure (kept whole
    where possible), ``"list"`` or ``"table"``.
    """

    heading_path: tuple[str, ...]
    text: str
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What a parser extracts from one file or record, before it is stored."""

    title: str
    sections: tuple[Section, ...]
    lang: str | None = None
    tags: tuple[str, ...] = ()
    url: str | None = None
    external_id: str | None = None

    @property
    def text(self) -> str:
        """The whole text, sections separated by blank lines."""
        return "\n\n".join(section.text for section in self.sections)


@dataclass(frozen=True, slots=True)
class Document:
    """A stored document; ``source`` is where it came from (a path, an upload, an id)."""

    id: str
    source: str
    title: str
    lang: str
    content_hash: str
    updated_at: datetime
    tags: tuple[str, ...] = ()
    url: str | None = None
    chunk_count: int = 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable unit of a document; knows its document and its heading path."""

    id: str
    document_id: str
    ordinal: int
    text: str
    heading_path: tuple[str, ...] = ()
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class Passage:
    """A chunk found for a query, with the scores that ranked it."""

    chunk: Chunk
    document: Document
    score: float
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source shown under an answer: ``[number]`` in the text points here."""

    number: int
    document_id: str
    chunk_id: str
    title: str
    source: str
    heading_path: tuple[str, ...]
    excerpt: str
    score: float
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What Allo says to a question: text with [n] markers and their citations.

    When ``abstained`` is true, the text is the "I don't know" message and
    ``citations`` is empty; ``confidence`` is the calibrated relevance of the best passage.
    """

    question: str
    text: str
    lang: str
    citations: tuple[Citation, ...]
    abstained: bool
    confidence: float
    mode: str
    passages: tuple[Passage, ...] = ()
