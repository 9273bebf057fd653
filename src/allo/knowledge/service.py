"""The knowledge base as one object: store, embedder, ingestion, retrieval and answers.

The CLI and the web app both build a ``KnowledgeBase`` from ``Settings`` and call it;
nothing heavy happens until ``warm_up()`` or the first question.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from allo.config import RetrievalMode, Settings
from allo.domain import Answer, Chunk, Document, Passage
from allo.errors import InvalidInputError
from allo.knowledge.answer import ExtractiveAnswerer
from allo.knowledge.index.embedding import Embedder, QueryVector, make_embedder
from allo.knowledge.index.retriever import Retriever, SnapshotLoader
from allo.knowledge.ingest.loader import Ingestor, IngestReport
from allo.language import LanguageDetector
from allo.messages import message
from allo.storage import SqlStore, open_store

if TYPE_CHECKING:
    from allo.gateway.call import Caller
    from allo.gateway.registry import ModelRegistry
    from allo.gateway.service import Gateway, ProviderSource
    from allo.knowledge.grounded import AnswerEvent, GroundedAnswer, GroundedAnswerer

DEMO_DIR = Path(__file__).parent / "demo"
MAX_QUESTION_CHARS = 2000


class KnowledgeBase:
    """Everything the knowledge engine offers, wired from one settings tree."""

    def __init__(self, settings: Settings, *, providers: ProviderSource | None = None) -> None:
        """``providers`` maps a declared model to its provider; by default they are built
        from the settings (tests pass scripted ones, keeping the real gateway)."""
        self.settings = settings
        self._provider_source = providers
        self.store: SqlStore = open_store(settings.resolved_database_url)
        self.embedder: Embedder | None = make_embedder(settings.embedder, settings.cache_dir)
        self.languages = LanguageDetector(settings.cache_dir)
        self.ingestor = Ingestor(
            self.store,
            self.embedder,
            max_file_bytes=settings.max_file_bytes,
            languages=self.languages,
        )
        self.retriever = Retriever(
            SnapshotLoader(self.store, self.embedder), self.embedder, settings.retrieval
        )
        self.answerer = ExtractiveAnswerer(
            abstain_below=settings.answer.abstain_below,
            max_citations=settings.answer.max_citations,
            chunks_of=self.store.chunks_of,
        )
        self._gateway: Gateway | None = None
        self._registry: ModelRegistry | None = None
        self._generator: GroundedAnswerer | None = None
        self._gateway_lock = threading.Lock()

    # -- models ----------------------------------------------------------------------

    @property
    def models(self) -> ModelRegistry:
        """The declared language models (providers built on first use)."""
        self._build_gateway()
        assert self._registry is not None
        return self._registry

    @property
    def gateway(self) -> Gateway:
        """The model gateway, built on first use (imports SDKs and the PII detector)."""
        self._build_gateway()
        assert self._gateway is not None
        return self._gateway

    def _build_gateway(self) -> None:
        with self._gateway_lock:
            if self._gateway is not None:
                return
            from allo.gateway.audit import AuditStore
            from allo.gateway.registry import ModelRegistry
            from allo.gateway.service import Gateway

            registry = ModelRegistry(
                self.settings.gateway, cache_dir=self.settings.cache_dir, extractive=self.answerer
            )
            audit = AuditStore(self.settings.resolved_database_url)
            source = self._provider_source or registry.provider
            self._gateway = Gateway(self.settings.gateway, source, audit)
            self._registry = registry

    @property
    def generator(self) -> GroundedAnswerer:
        """Generated answers checked against their passages (built on first use)."""
        gateway = self.gateway
        with self._gateway_lock:
            if self._generator is None:
                from allo.knowledge.grounded import GroundedAnswerer

                self._generator = GroundedAnswerer(
                    gateway, self.answerer, models=self.settings.gateway
                )
            return self._generator

    def uses_model(self, model: str | None) -> bool:
        """Whether answering with ``model`` means a language model (not the extractive one)."""
        name = model or self.settings.gateway.default_model
        spec = self.settings.gateway.spec(name)
        return spec is None or spec.provider != "extractive"

    def warm_up(self) -> None:
        """Load the models and build the indexes."""
        self.languages.warm_up()
        self.retriever.warm_up()

    def close(self) -> None:
        """Release the store's connections."""
        if self._gateway is not None:
            self._gateway.audit.close()
        self.store.close()

    # -- documents -------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        force: bool = False,
        on_file: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Ingest files and folders (see ``Ingestor.ingest_paths``)."""
        return self.ingestor.ingest_paths(
            paths, prune=prune, force=force, on_file=on_file, on_start=on_start
        )

    def load_demo(self) -> IngestReport:
        """Ingest the bundled demo knowledge base (fictional operator, French and English)."""
        return self.ingestor.ingest_paths([DEMO_DIR / "fr", DEMO_DIR / "en"], prune=True)

    def documents(self, *, offset: int = 0, limit: int = 100) -> list[Document]:
        """A page of documents."""
        return self.store.list_documents(offset=offset, limit=limit)

    def document(self, document_id: str) -> tuple[Document, list[Chunk]]:
        """One document and its chunks."""
        return self.store.get_document(document_id), self.store.chunks_of(document_id)

    def delete(self, document_id: str) -> None:
        """Delete a document."""
        self.store.delete_document(document_id)

    # -- questions -------------------------------------------------------------------

    def search(
        self, query: str, mode: RetrievalMode | None = None, k: int | None = None
    ) -> list[Passage]:
        """Ranked passages for ``query``."""
        return self.retriever.search(query, mode, k)

    def ask(
        self,
        question: str,
        mode: RetrievalMode | None = None,
        lang: str | None = None,
        *,
        query_vector: QueryVector | None = None,
    ) -> Answer:
        """Answer from the documents, with citations, or abstain (no language model).

        Sentences of a document addressed to the assistant are never quoted (see
        ``answer_from_data``): an ingested page must not speak to customers in our name.
        ``query_vector``: the question's embedding if the caller computed it already
        (the assistant's intent classifier does); used only when it is the embedder's
        vector of the question as searched (see ``Retriever.search``).
        """
        from allo.knowledge.grounded.generator import answer_from_data

        question, lang, mode, passages = self._retrieve(question, mode, lang, query_vector)
        decision = self.answerer.answer(question, lang, passages, mode.value)
        return answer_from_data(self.answerer, question, lang, passages, mode.value, decision)

    def generate(
        self,
        question: str,
        *,
        model: str | None = None,
        caller: Caller | None = None,
        mode: RetrievalMode | None = None,
        lang: str | None = None,
    ) -> GroundedAnswer:
        """An answer written by ``model`` from the retrieved passages only, each sentence
        checked against them; the extractive answer when the check or the model fails."""
        question, lang, mode, passages = self._retrieve(question, mode, lang)
        return self.generator.answer(
            question, lang, passages, mode.value, model=model, caller=caller
        )

    def generate_stream(
        self,
        question: str,
        *,
        model: str | None = None,
        caller: Caller | None = None,
        mode: RetrievalMode | None = None,
        lang: str | None = None,
    ) -> Iterator[AnswerEvent]:
        """``generate`` as checked sentences while the model writes, then the result."""
        question, lang, mode, passages = self._retrieve(question, mode, lang)
        return self.generator.stream(
            question, lang, passages, mode.value, model=model, caller=caller
        )

    def _retrieve(
        self,
        question: str,
        mode: RetrievalMode | None,
        lang: str | None,
        query_vector: QueryVector | None = None,
    ) -> tuple[str, str, RetrievalMode, list[Passage]]:
        """The cleaned question, its language, the mode and the ranked passages."""
        question = " ".join(question.split())
        if not question:
            raise InvalidInputError(message("empty_question", lang or "fr"))
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidInputError(
                f"question too long ({len(question)} characters, at most {MAX_QUESTION_CHARS}); "
                "ask something shorter"
            )
        lang = lang or self.languages.detect(question)
        mode = mode or self.retriever.default_mode()
        passages = self.retriever.search(
            question, mode, k=max(10, self.settings.retrieval.top_k), query_vector=query_vector
        )
        return question, lang, mode, passages
