"""The SQL store: one schema on SQLite (default, embedded) or PostgreSQL (psycopg 3).

Both engines run the same SQLAlchemy Core statements; the differences are handled here
(SQLite needs foreign keys and WAL switched on, upserts are written per dialect).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from allo.domain import Chunk, Document
from allo.errors import ConfigError, NotFoundError, StorageError
from allo.storage.base import StoredChunk, Vector
from allo.storage.schema import chunks, documents, embedding_cache, store_meta

_MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration; checked against Alembic's own view in the tests. Knowing it lets
# a short command (``allo ask``) skip importing Alembic when the schema is current.
LATEST_REVISION = "0005"
#: pooled connections kept open to a SQLite file (see ``SqlStore._create_engine``)
SQLITE_POOL = 40


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys (for cascades), WAL (readers never block the writer), patience on locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _durable_commits(dbapi_connection: Any, _record: Any) -> None:
    """Every commit reaches the disk before it returns (see ``SqlStore(durable=True)``)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _vector_bytes(vector: Vector) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _vector_from(blob: bytes | None) -> Vector | None:
    if blob is None:
        return None
    return np.frombuffer(blob, dtype=np.float32).copy()


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; everything Allo stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SqlStore:
    """``KnowledgeStore`` over SQLAlchemy; construct with ``open_store`` or a URL.

    ``durable``: on a SQLite file, each commit is synced to the disk before it returns
    (``synchronous=FULL``; WAL's ``NORMAL``, the default, may lose the last commits to a
    power cut or an OS crash, never to a killed process). For a store whose commits
    answer someone who then forgets the data (the NOC's: a broker acknowledgement, a
    webhook's 200). PostgreSQL commits are durable by default."""

    def __init__(self, url: str, *, durable: bool = False) -> None:
        self.url = url
        self.durable = durable
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created on first use."""
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def _create_engine(self) -> Engine:
        if self.url.startswith("sqlite"):
            database = self.url.split("///", 1)[-1]
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # A connection per web worker thread (anyio runs 40): under load a request
            # then never waits for one, nor opens and closes an overflow connection (each
            # opening runs the pragmas below).
            in_file = make_url(self.url).database not in (None, "", ":memory:")
            pool = {"pool_size": SQLITE_POOL, "max_overflow": 8} if in_file else {}
            engine = create_engine(self.url, connect_args={"timeout": 30}, **pool)
            event.listen(engine, "connect", _sqlite_pragmas)
            if self.durable:
                event.listen(engine, "connect", _durable_commits)
            return engine
        try:
            return create_engine(self.url, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "PostgreSQL needs the psycopg driver: pip install 'allo[postgres]'"
            ) from exc

    # -- lifecycle -----------------------------------------------------------------

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or ``None`` when it has no schema."""
        with self.engine.connect() as connection:
            try:
                value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except (OperationalError, ProgrammingError):
                return None
        return None if value is None else str(value)

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (idempotent)."""
        try:
            if self.schema_revision() == LATEST_REVISION:
                return
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise StorageError(
                f"cannot open the store at {self._safe_url()}: {exc.orig}. "
                "Check ALLO_DATABASE_URL (or ALLO_DATA_DIR) and that the server is running.",
                retryable=True,
            ) from exc

    def close(self) -> None:
        """Dispose of pooled connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _safe_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    # -- writes ----------------------------------------------------------------------

    def _bump_revision(self, connection: Connection) -> None:
        connection.execute(
            update(store_meta)
            .where(store_meta.c.key == "revision")
            .values(value=store_meta.c.value + 1)
        )

    def put_document(
        self, document: Document, chunk_list: Sequence[Chunk], vectors: Vector | None
    ) -> None:
        """Replace the document and every chunk in one transaction."""
        if vectors is not None and len(vectors) != len(chunk_list):
            raise ValueError(f"{len(chunk_list)} chunks but {len(vectors)} vectors")
        row = {
            "id": document.id,
            "source": document.source,
            "title": document.title,
            "lang": document.lang,
            "tags": json.dumps(list(document.tags), ensure_ascii=False),
            "url": document.url,
            "content_hash": document.content_hash,
            "updated_at": document.updated_at,
            "chunk_count": len(chunk_list),
        }
        chunk_rows = [
            {
                "id": chunk.id,
                "document_id": document.id,
                "ordinal": chunk.ordinal,
                "heading_path": json.dumps(list(chunk.heading_path), ensure_ascii=False),
                "kind": chunk.kind,
                "text": chunk.text,
                "vector": None if vectors is None else _vector_bytes(vectors[index]),
            }
            for index, chunk in enumerate(chunk_list)
        ]
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    delete(documents).where(
                        (documents.c.id == document.id) | (documents.c.source == document.source)
                    )
                )
                connection.execute(insert(documents).values(row))
                if chunk_rows:
                    connection.execute(insert(chunks), chunk_rows)
                self._bump_revision(connection)
        except SQLAlchemyError as exc:
            raise StorageError(
                f"could not save document {document.source!r}: {exc}", retryable=False
            ) from exc

    def delete_document(self, document_id: str) -> None:
        """Delete a document; its chunks go with it (cascade)."""
        with self.engine.begin() as connection:
            connection.execute(delete(chunks).where(chunks.c.document_id == document_id))
            result = connection.execute(delete(documents).where(documents.c.id == document_id))
            if result.rowcount == 0:
                raise NotFoundError(
                    f"no document with id {document_id!r}; list them with `allo documents` "
                    "or GET /v1/documents"
                )
            self._bump_revision(connection)

    def cache_vectors(self, model: str, vectors: Mapping[str, Vector]) -> None:
        """Upsert embeddings by content key."""
        if not vectors:
            return
        rows = [
            {"model": model, "key": key, "vector": _vector_bytes(vector)}
            for key, vector in vectors.items()
        ]
        builder = pg_insert if self.dialect == "postgresql" else sqlite_insert
        statement = builder(embedding_cache).on_conflict_do_nothing(index_elements=["model", "key"])
        with self.engine.begin() as connection:
            connection.execute(statement, rows)

    # -- reads -----------------------------------------------------------------------

    def revision(self) -> int:
        """The write counter, read fresh from the database."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(store_meta.c.value).where(store_meta.c.key == "revision")
            ).scalar_one()
        return int(value)

    @staticmethod
    def _document(row: Row[Any]) -> Document:
        return Document(
            id=row.id,
            source=row.source,
            title=row.title,
            lang=row.lang,
            tags=tuple(json.loads(row.tags)),
            url=row.url,
            content_hash=row.content_hash,
            updated_at=_aware(row.updated_at),
            chunk_count=row.chunk_count,
        )

    @staticmethod
    def _chunk(row: Row[Any]) -> Chunk:
        return Chunk(
            id=row.id,
            document_id=row.document_id,
            ordinal=row.ordinal,
            text=row.text,
            heading_path=tuple(json.loads(row.heading_path)),
            kind=row.kind,
        )

    def get_document(self, document_id: str) -> Document:
        """One document by id."""
        with self.engine.connect() as connection:
            row = connection.execute(select(documents).where(documents.c.id == document_id)).first()
        if row is None:
            raise NotFoundError(
                f"no document with id {document_id!r}; list them with `allo documents` "
                "or GET /v1/documents"
            )
        return self._document(row)

    def find_by_source(self, source: str) -> Document | None:
        """The document loaded from this source, if any."""
        with self.engine.connect() as connection:
            row = connection.execute(select(documents).where(documents.c.source == source)).first()
        return None if row is None else self._document(row)

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[Document]:
        """A page of documents ordered by title then id."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(documents)
                .order_by(documents.c.title, documents.c.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return [self._document(row) for row in rows]

    def documents_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        """Several documents at once (unknown ids are left out)."""
        wanted = list(set(ids))
        if not wanted:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(select(documents).where(documents.c.id.in_(wanted))).all()
        return {row.id: self._document(row) for row in rows}

    def count_documents(self) -> int:
        """Number of stored documents."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(documents)).scalar_one())

    def sources(self) -> list[str]:
        """Every document's source."""
        with self.engine.connect() as connection:
            return list(connection.execute(select(documents.c.source)).scalars())

    def chunks_of(self, document_id: str) -> list[Chunk]:
        """A document's chunks in reading order."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(chunks).where(chunks.c.document_id == document_id).order_by(chunks.c.ordinal)
            ).all()
        return [self._chunk(row) for row in rows]

    def iter_chunks(self) -> Iterator[StoredChunk]:
        """All chunks with vectors, ordered by document then position."""
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=2000).execute(
                select(chunks).order_by(chunks.c.document_id, chunks.c.ordinal)
            )
            for row in result:
                yield StoredChunk(chunk=self._chunk(row), vector=_vector_from(row.vector))

    def cached_vectors(self, model: str, keys: Iterable[str]) -> dict[str, Vector]:
        """Embeddings already known for these keys."""
        wanted = list(set(keys))
        found: dict[str, Vector] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    select(embedding_cache.c.key, embedding_cache.c.vector).where(
                        (embedding_cache.c.model == model)
                        & embedding_cache.c.key.in_(wanted[start : start + 500])
                    )
                ).all()
                for key, blob in rows:
                    vector = _vector_from(blob)
                    if vector is not None:
                        found[key] = vector
        return found


class SqlBacked:
    """Base of the stores that live in the knowledge store's database (NOC, conversations).

    They share its engine set-up (SQLite pragmas, PostgreSQL pooling) and its one chain
    of Alembic migrations, so one URL and one ``migrate()`` serve the whole product.
    """

    def __init__(self, url: str, *, durable: bool = False) -> None:
        self._sql = SqlStore(url, durable=durable)

    @property
    def url(self) -> str:
        """The database URL."""
        return self._sql.url

    def migrate(self) -> None:
        """Bring the shared schema to the latest revision."""
        self._sql.migrate()

    def close(self) -> None:
        """Release pooled connections."""
        self._sql.close()


def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """Open (and by default migrate) the store at ``url``."""
    store = SqlStore(url)
    if migrate:
        store.migrate()
    return store
