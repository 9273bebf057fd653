"""The local provider: the packaged 0.5B model run in process by llama.cpp."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.errors import ConfigError, InvalidInputError, ModelTimeoutError
from allo.gateway.config import ModelSpec, ProviderKind
from allo.gateway.protocol import ChatMessage, ChatRequest, Provider, Role, StreamEnd, TextDelta
from allo.gateway.providers.local import LocalProvider
from allo.testing.llama_server import LLM_MARKS, TEST_MODEL

pytestmark = LLM_MARKS

SYSTEM = ChatMessage(
    Role.SYSTEM,
    "Tu es l'assistant d'un opérateur télécom. Réponds en français, en une phrase.",
)
REQUEST = ChatRequest(
    messages=(SYSTEM, ChatMessage(Role.USER, "Comment redémarrer ma box Internet ?")),
    max_tokens=16,
)
CONTEXT = 1024


def spec(**update: object) -> ModelSpec:
    base = ModelSpec(
        name="qwen-small",
        provider=ProviderKind.LOCAL,
        packaged=TEST_MODEL,
        context_length=CONTEXT,
        threads=2,
    )
    return base.model_copy(update=update)


@pytest.fixture(scope="module")
def provider(model_cache: Path, small_gguf: Path) -> Iterator[LocalProvider]:
    local = LocalProvider(spec(), cache_dir=model_cache)
    local.warm_up()
    yield local


def test_check_does_not_load(model_cache: Path, small_gguf: Path) -> None:
    fresh = LocalProvider(spec(), cache_dir=model_cache)
    assert isinstance(fresh, Provider)
    status = fresh.check()
    assert status.reachable, status.detail
    assert status.extra["loaded"] == "no"
    assert not fresh.loaded


def test_complete_is_deterministic_at_temperature_zero(provider: LocalProvider) -> None:
    first = provider.complete(REQUEST, timeout=120)
    assert first.text.strip()
    assert first.model == TEST_MODEL
    assert first.finish_reason in ("stop", "length")
    assert first.usage.prompt_tokens == provider.count_tokens(REQUEST.messages)
    assert 0 < first.usage.completion_tokens <= 16
    # the second call reuses the cached prompt prefix: the answer must not change
    again = provider.complete(REQUEST, timeout=120)
    assert again.text == first.text


def test_stream_deltas_join_to_the_final_text(provider: LocalProvider) -> None:
    events = list(provider.stream(REQUEST, timeout=120))
    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert len(deltas) > 1
    assert isinstance(events[-1], StreamEnd)
    assert sum(isinstance(event, StreamEnd) for event in events) == 1
    assert "".join(deltas) == events[-1].completion.text
    assert events[-1].completion.text == provider.complete(REQUEST, timeout=120).text


def test_timeout_aborts_prompt_evaluation_and_leaves_the_model_usable(
    provider: LocalProvider,
) -> None:
    reference = provider.complete(REQUEST, timeout=120).text
    # ~600 new prompt tokens take seconds on two cores; 50 ms is not enough
    long = ChatRequest(
        messages=(SYSTEM, ChatMessage(Role.USER, "Ma box clignote en orange. " * 80)),
        max_tokens=8,
    )
    with pytest.raises(ModelTimeoutError, match="evaluating the prompt"):
        provider.complete(long, timeout=0.05)
    assert provider.complete(REQUEST, timeout=120).text == reference


def test_timeout_while_generating(provider: LocalProvider) -> None:
    chatty = ChatRequest(messages=REQUEST.messages, max_tokens=500)
    received: list[str] = []
    with pytest.raises(ModelTimeoutError):
        for event in provider.stream(chatty, timeout=1.0):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert provider.complete(REQUEST, timeout=120).text  # still usable


def test_prompt_over_the_context_is_invalid_input(provider: LocalProvider) -> None:
    huge = ChatRequest(messages=(ChatMessage(Role.USER, "Ma box clignote en orange. " * 300),))
    assert provider.count_tokens(huge.messages) > CONTEXT
    with pytest.raises(InvalidInputError, match=f"context of {CONTEXT}"):
        provider.complete(huge, timeout=120)


def test_count_tokens_applies_the_chat_template(provider: LocalProvider) -> None:
    short = (ChatMessage(Role.USER, "Bonjour"),)
    counted = provider.count_tokens(short)
    # "Bonjour" is one or two tokens; the template adds the role markers (and Qwen's
    # default system prompt when none is given)
    assert counted > 5
    assert provider.count_tokens((SYSTEM, *short)) > provider.count_tokens((SYSTEM,))


def test_busy_model_times_out_waiting(provider: LocalProvider) -> None:
    holder_ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        for event in provider.stream(REQUEST, timeout=120):
            if isinstance(event, TextDelta):
                holder_ready.set()
                release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holder_ready.wait(120)
        with pytest.raises(ModelTimeoutError, match="busy"):
            provider.complete(REQUEST, timeout=0.2)
    finally:
        release.set()
        thread.join(120)


def test_missing_gguf_file_is_a_config_error(tmp_path: Path) -> None:
    missing = LocalProvider(
        spec(packaged=None, gguf_path=tmp_path / "absent.gguf"), cache_dir=tmp_path
    )
    assert not missing.check().reachable
    with pytest.raises(ConfigError, match="does not exist"):
        missing.complete(REQUEST, timeout=5)
