"""Table definitions shared by the store and the migrations' expectations."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source", Text, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("lang", String(16), nullable=False),
    Column("tags", Text, nullable=False),
    Column("url", Text),
    Column("content_hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("chunk_count", Integer, nullable=False),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", String(80), primary_key=True),
    Column(
        "document_id",
        String(64),
        ForeignKey("documents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("ordinal", Integer, nullable=False),
    Column("heading_path", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("vector", LargeBinary),
)

embedding_cache = Table(
    "embedding_cache",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("vector", LargeBinary, nullable=False),
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)
