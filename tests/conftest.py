"""Shared fixtures: settings in a temporary folder and a knowledge base without a model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.config import EmbedderKind, Settings
from allo.knowledge.service import KnowledgeBase
from allo.testing.embedders import FakeEmbedder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated in ``tmp_path``, with the fake embedder (no model to load)."""
    return Settings(data_dir=tmp_path / "data", embedder=EmbedderKind.FAKE)


@pytest.fixture
def kb(settings: Settings) -> Iterator[KnowledgeBase]:
    """An empty knowledge base."""
    knowledge = KnowledgeBase(settings)
    yield knowledge
    knowledge.close()


@pytest.fixture(scope="session")
def demo_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """The bundled demo knowledge base, loaded once (fake embedder, real BM25)."""
    data = tmp_path_factory.mktemp("demo")
    knowledge = KnowledgeBase(Settings(data_dir=data, embedder=EmbedderKind.FAKE))
    knowledge.load_demo()
    yield knowledge
    knowledge.close()


@pytest.fixture
def demo_embedder(demo_kb: KnowledgeBase) -> FakeEmbedder:
    """The demo knowledge base's fake embedder, whose ``calls`` count embeddings."""
    embedder = demo_kb.embedder
    assert isinstance(embedder, FakeEmbedder)
    return embedder
