"""Persistence: the store protocol and its SQL implementation (SQLite or PostgreSQL)."""

from allo.storage.base import KnowledgeStore, StoredChunk
from allo.storage.sql import SqlStore, open_store

__all__ = ["KnowledgeStore", "SqlStore", "StoredChunk", "open_store"]
