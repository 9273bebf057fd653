"""The OpenAI-compatible provider against a real llama.cpp server on loopback."""

from __future__ import annotations

import pytest

from allo.errors import InvalidInputError, ModelTimeoutError
from allo.gateway.config import ModelSpec, ProviderKind
from allo.gateway.protocol import ChatMessage, ChatRequest, Role, StreamEnd, TextDelta
from allo.gateway.providers.openai_compat import OpenAICompatibleProvider
from allo.testing.llama_server import LLM_MARKS, LlamaServer, free_port

pytestmark = LLM_MARKS

MESSAGES = (
    ChatMessage(Role.SYSTEM, "Tu es l'assistant d'un opérateur télécom. Réponds en français."),
    ChatMessage(Role.USER, "Que faire si ma box Internet ne s'allume plus ?"),
)
REQUEST = ChatRequest(messages=MESSAGES, max_tokens=24)


def spec(base_url: str, model: str) -> ModelSpec:
    return ModelSpec(
        name="llama-server", provider=ProviderKind.OPENAI, model=model, base_url=base_url
    )


@pytest.fixture(scope="module")
def provider(llama_cpp_server: LlamaServer) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(spec(llama_cpp_server.base_url, llama_cpp_server.model))


def test_complete_returns_text_and_the_server_usage(provider: OpenAICompatibleProvider) -> None:
    completion = provider.complete(REQUEST, timeout=120)
    assert completion.text.strip()
    assert completion.finish_reason in ("stop", "length")
    assert 0 < completion.usage.completion_tokens <= 24
    assert completion.usage.prompt_tokens > 20
    # the estimate used for budgets must not count fewer tokens than the model does
    assert provider.count_tokens(MESSAGES) >= completion.usage.prompt_tokens


def test_stream_deltas_join_to_the_final_text(provider: OpenAICompatibleProvider) -> None:
    events = list(provider.stream(REQUEST, timeout=120))
    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert len(deltas) > 1
    assert "".join(deltas) == end.completion.text
    assert end.completion.usage.completion_tokens > 0
    assert end.completion.usage.prompt_tokens > 0


def test_prompt_over_the_server_context_is_invalid_input(
    provider: OpenAICompatibleProvider,
) -> None:
    huge = ChatRequest(
        messages=(ChatMessage(Role.USER, "La box clignote en rouge. " * 700),), max_tokens=8
    )
    with pytest.raises(InvalidInputError, match="HTTP 400"):
        provider.complete(huge, timeout=120)


def test_tiny_timeout_is_a_model_timeout(provider: OpenAICompatibleProvider) -> None:
    with pytest.raises(ModelTimeoutError):
        provider.complete(REQUEST, timeout=0.001)
    # The server goes on with the abandoned request (one at a time): wait for it, so that
    # the next test's 5 s reachability check does not queue behind it on a busy machine.
    provider.complete(REQUEST, timeout=120)


def test_check_reachable_and_model_served(
    provider: OpenAICompatibleProvider, llama_cpp_server: LlamaServer
) -> None:
    status = provider.check()
    assert status.reachable, status.detail
    assert llama_cpp_server.model in status.extra["models"]
    other = OpenAICompatibleProvider(spec(llama_cpp_server.base_url, "mistral-large"))
    status = other.check()
    assert not status.reachable and "does not serve model 'mistral-large'" in status.detail


def test_check_on_a_closed_port_is_unreachable() -> None:
    closed = OpenAICompatibleProvider(spec(f"http://127.0.0.1:{free_port()}/v1", "any"))
    status = closed.check()
    assert not status.reachable
    assert "cannot reach" in status.detail
