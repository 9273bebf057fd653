"""Request and response bodies of the HTTP API (documented in the OpenAPI spec)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from allo.config import RetrievalMode
from allo.domain import Answer, Citation, Document

if TYPE_CHECKING:
    from allo.knowledge.grounded import GroundedAnswer


class AskRequest(BaseModel):
    """A question to the knowledge base."""

    question: str = Field(
        min_length=1, max_length=2000, examples=["Comment configurer ma Livebox 6 ?"]
    )
    mode: RetrievalMode | None = Field(default=None, description="Default: the configured mode.")
    lang: str | None = Field(default=None, pattern=r"^[a-z]{2}$", description="Default: detected.")
    model: str | None = Field(
        default=None,
        max_length=64,
        description="A declared model (GET /v1/models) to write the answer from the passages; "
        "default: the configured default model (extractive unless changed).",
    )
    stream: bool = Field(
        default=False,
        description="Answer as server-sent events: checked sentences as the model writes them.",
    )


class CitationOut(BaseModel):
    """A numbered source of an answer."""

    number: int
    document_id: str
    chunk_id: str
    title: str
    source: str
    heading_path: list[str]
    excerpt: str
    score: float
    url: str | None
    link: str = Field(description="Page of the cited passage in the web app.")

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        """Build from the domain record."""
        return cls(
            number=c.number,
            document_id=c.document_id,
            chunk_id=c.chunk_id,
            title=c.title,
            source=c.source,
            heading_path=list(c.heading_path),
            excerpt=c.excerpt,
            score=round(c.score, 6),
            url=c.url,
            link=f"/documents/{c.document_id}#{c.chunk_id}",
        )


class AskResponse(BaseModel):
    """An answer with its citations, or an abstention."""

    answer: str
    lang: str
    abstained: bool
    confidence: float
    mode: str
    citations: list[CitationOut]
    model: str | None = Field(default=None, description="The model that wrote the answer.")
    generated: bool = Field(default=False, description="True when a language model wrote it.")
    fallback: str | None = Field(
        default=None,
        description="Why the extractive answer is shown although a model was asked "
        "(model_error, unsupported, declined, empty, gateway_extractive).",
    )
    removed_sentences: int = Field(
        default=0, description="Sentences of the model's answer the passages did not support."
    )
    data_class: str | None = None

    @classmethod
    def of(cls, answer: Answer, grounded: GroundedAnswer | None = None) -> AskResponse:
        """Build from the domain record (and how it was generated, if it was)."""
        extra: dict[str, object] = {}
        if grounded is not None:
            extra = {
                "model": grounded.model,
                "generated": grounded.generated,
                "fallback": str(grounded.fallback) if grounded.fallback else None,
                "removed_sentences": grounded.removed_sentences,
                "data_class": grounded.data_class,
            }
        return cls(
            **extra,  # type: ignore[arg-type]
            answer=answer.text,
            lang=answer.lang,
            abstained=answer.abstained,
            confidence=round(answer.confidence, 4),
            mode=answer.mode,
            citations=[CitationOut.of(c) for c in answer.citations],
        )


class DocumentOut(BaseModel):
    """A stored document."""

    id: str
    title: str
    source: str
    lang: str
    tags: list[str]
    url: str | None
    updated_at: datetime
    chunks: int

    @classmethod
    def of(cls, document: Document) -> DocumentOut:
        """Build from the domain record."""
        return cls(
            id=document.id,
            title=document.title,
            source=document.source,
            lang=document.lang,
            tags=list(document.tags),
            url=document.url,
            updated_at=document.updated_at,
            chunks=document.chunk_count,
        )


class DocumentPage(BaseModel):
    """A page of documents."""

    total: int
    offset: int
    limit: int
    items: list[DocumentOut]


class UploadResponse(BaseModel):
    """What an upload did."""

    added: int
    updated: int
    unchanged: int
    chunks: int
    documents: list[DocumentOut]
