"""Fixtures for the tests that run the packaged 0.5B model (see ``LLM_MARKS``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.gateway.weights import packaged_gguf
from allo.testing.llama_server import TEST_MODEL, LlamaServer, llama_server


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder where the test model is joined once per session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def small_gguf(model_cache: Path) -> Path:
    """The joined and verified Qwen2.5-Coder-0.5B GGUF."""
    return packaged_gguf(TEST_MODEL, model_cache)


@pytest.fixture(scope="session")
def llama_cpp_server(small_gguf: Path) -> Iterator[LlamaServer]:
    """One real llama.cpp OpenAI-compatible server for the whole session (2 threads)."""
    with llama_server(small_gguf, n_ctx=2048, threads=2) as server:
        yield server
