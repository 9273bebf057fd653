"""Incremental ingestion: files and folders in, documents with chunks and vectors stored.

Each file is checked (exists, size limit), parsed, chunked and embedded; a document is
written with all its chunks in one transaction, so a crash or ``kill -9`` leaves every
document either fully old or fully new, and a re-run finishes the job. Unchanged
documents are skipped by content hash; embeddings are cached by text, so editing one
paragraph re-embeds that paragraph only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from allo.domain import Chunk, Document, ParsedDocument
from allo.errors import AlloError, FileTooLargeError, InvalidInputError
from allo.knowledge.index.embedding import Embedder, Matrix, embed_passages_cached
from allo.knowledge.index.retriever import index_text
from allo.knowledge.ingest.chunking import ChunkingPolicy, chunk_document
from allo.knowledge.ingest.parsers import SUPPORTED_SUFFIXES, parse_bytes
from allo.language import LanguageDetector
from allo.storage.base import KnowledgeStore

Progress = Callable[[str], None]


@dataclass
class IngestReport:
    """What an ingest run did, source by source."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    chunks: int = 0
    documents: list[Document] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        """Documents written (new or changed)."""
        return len(self.added) + len(self.updated)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "failed": [{"source": source, "reason": reason} for source, reason in self.failed],
            "pruned": len(self.pruned),
            "chunks": self.chunks,
        }


def document_id_for(source: str) -> str:
    """A stable id from the source, so re-ingesting a file keeps its document id."""
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def content_hash(parsed: ParsedDocument) -> str:
    """Hash of everything stored about a document: same hash, nothing to redo."""
    payload = json.dumps(
        [
            parsed.title,
            parsed.lang,
            list(parsed.tags),
            parsed.url,
            [[list(s.heading_path), s.text, s.kind] for s in parsed.sections],
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to ingest under ``paths`` (folders walked, hidden entries skipped) and errors."""
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    for path in paths:
        if not path.exists():
            errors.append((str(path), "no such file or folder; check the path"))
        elif path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in relative):
                    continue
                if candidate.is_file() and candidate.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(candidate)
        else:
            files.append(path)
    return files, errors


@dataclass
class _Pending:
    document: Document
    chunks: list[Chunk]
    texts: list[str]
    is_new: bool


class Ingestor:
    """Loads documents into a store, with their chunks and embeddings."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder | None,
        *,
        max_file_bytes: int,
        policy: ChunkingPolicy | None = None,
        batch_chunks: int = 64,
        languages: LanguageDetector | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.max_file_bytes = max_file_bytes
        self.policy = policy or ChunkingPolicy()
        self.batch_chunks = batch_chunks
        self.languages = languages or LanguageDetector()

    # -- entry points ------------------------------------------------------------------

    def ingest_paths(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        force: bool = False,
        on_file: Progress | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Ingest files and folders; ``prune`` removes documents whose source is gone."""
        report = IngestReport()
        roots = [path.resolve() for path in paths]
        files, errors = discover(roots)
        report.failed.extend(errors)
        if on_start:
            on_start(len(files))
        seen: set[str] = set()
        pending: list[_Pending] = []
        for file in files:
            source = str(file)
            try:
                parsed = self._parse_file(file)
            except AlloError as exc:
                report.failed.append((source, str(exc)))
                seen.update(self._sources_of(source))  # a broken file is not a deleted one
            else:
                for document in parsed:
                    doc_source = self._source(
                        source, document, multi=len(parsed) > 1 or document.external_id is not None
                    )
                    seen.add(doc_source)
                    item = self._prepare(doc_source, document, force, report)
                    if item is not None:
                        pending.append(item)
                if sum(len(item.chunks) for item in pending) >= self.batch_chunks:
                    self._flush(pending, report)
                    pending = []
            if on_file:
                on_file(source)
        self._flush(pending, report)
        if prune:
            self._prune(roots, seen, report)
        return report

    def ingest_bytes(self, data: bytes, name: str, source: str) -> IngestReport:
        """Ingest one uploaded file; errors raise (the API turns them into a 4xx)."""
        if len(data) > self.max_file_bytes:
            raise FileTooLargeError(self._too_large(name, len(data)))
        parsed = parse_bytes(data, name)
        report = IngestReport()
        pending = []
        for document in parsed:
            multi = len(parsed) > 1 or document.external_id is not None
            item = self._prepare(
                self._source(source, document, multi=multi), document, False, report
            )
            if item is not None:
                pending.append(item)
        self._flush(pending, report)
        return report

    # -- steps -------------------------------------------------------------------------

    def _too_large(self, name: str, size: int) -> str:
        return (
            f"{name}: {size / 1e6:.1f} MB is over the {self.max_file_bytes / 1e6:.0f} MB limit; "
            "split the file or raise ALLO_MAX_FILE_BYTES"
        )

    def _parse_file(self, file: Path) -> list[ParsedDocument]:
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise InvalidInputError(f"{file}: cannot read ({exc.strerror})") from exc
        if size > self.max_file_bytes:
            raise FileTooLargeError(self._too_large(str(file), size))
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"{file}: cannot read ({exc.strerror})") from exc
        return parse_bytes(data, str(file))

    @staticmethod
    def _source(file_source: str, document: ParsedDocument, *, multi: bool) -> str:
        if multi and document.external_id:
            return f"{file_source}#{document.external_id}"
        return file_source

    def _sources_of(self, file_source: str) -> list[str]:
        return [
            source
            for source in self.store.sources()
            if source == file_source or source.startswith(file_source + "#")
        ]

    def _prepare(
        self, source: str, parsed: ParsedDocument, force: bool, report: IngestReport
    ) -> _Pending | None:
        digest = content_hash(parsed)
        existing = self.store.find_by_source(source)
        if existing is not None and existing.content_hash == digest and not force:
            report.unchanged.append(source)
            return None
        document_id = document_id_for(source)
        document = Document(
            id=document_id,
            source=source,
            title=parsed.title,
            lang=parsed.lang or self.languages.detect(f"{parsed.title}\n{parsed.text}"),
            content_hash=digest,
            updated_at=datetime.now(UTC),
            tags=parsed.tags,
            url=parsed.url,
        )
        chunks = chunk_document(parsed, document_id, self.policy)
        texts = [index_text(chunk, title=parsed.title) for chunk in chunks]
        return _Pending(document, chunks, texts, existing is None)

    def _flush(self, pending: list[_Pending], report: IngestReport) -> None:
        if not pending:
            return
        all_texts = [text for item in pending for text in item.texts]
        vectors = self._embed(all_texts)
        offset = 0
        for item in pending:
            count = len(item.chunks)
            item_vectors = None if vectors is None else vectors[offset : offset + count]
            offset += count
            self.store.put_document(item.document, item.chunks, item_vectors)
            (report.added if item.is_new else report.updated).append(item.document.source)
            report.chunks += count
            report.documents.append(item.document)

    def _embed(self, texts: list[str]) -> Matrix | None:
        """Embed passages, reusing cached vectors for texts already seen."""
        if self.embedder is None:
            return None
        return embed_passages_cached(self.embedder, texts, self.store)

    def _prune(self, roots: list[Path], seen: set[str], report: IngestReport) -> None:
        for source in self.store.sources():
            path = source.split("#", 1)[0]
            inside = any(path == str(root) or path.startswith(str(root) + "/") for root in roots)
            if inside and source not in seen:
                document = self.store.find_by_source(source)
                if document is not None:
                    self.store.delete_document(document.id)
                    report.pruned.append(source)
