"""The Anthropic provider against recorded Messages API responses."""

from __future__ import annotations

import contextlib
import logging

import httpx2
import pytest

from allo.errors import ConfigError, InvalidInputError, ModelError, ModelTimeoutError
from allo.gateway.config import DataLocation, ModelSpec, ProviderKind
from allo.gateway.protocol import ChatMessage, ChatRequest, Provider, Role, StreamEnd, TextDelta
from allo.gateway.providers.anthropic import AnthropicProvider
from allo.testing.llama_server import free_port

from .replay import Replay, answer_with, fail_with, recorded

KEY = "sk-ant-api03-test-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0"
SYSTEM = "Tu es l'assistant d'un opérateur télécom."
DOCUMENTS = "Documents :\n[1] Livebox 6 : branchez la box sur la prise fibre."
QUESTION = "Comment configurer ma Livebox 6 ? Je m'appelle Jeanne Martin."
REQUEST = ChatRequest(
    messages=(
        ChatMessage(Role.SYSTEM, SYSTEM),
        ChatMessage(Role.SYSTEM, DOCUMENTS),
        ChatMessage(Role.USER, QUESTION),
    ),
    max_tokens=300,
    temperature=0.0,
    stop=("FIN",),
)


def spec(base_url: str | None = None) -> ModelSpec:
    return ModelSpec(
        name="claude",
        provider=ProviderKind.ANTHROPIC,
        model="claude-haiku-4-5",
        base_url=base_url,
        api_key_env="ALLO_TEST_ANTHROPIC_KEY",
        location=DataLocation.EXTERNAL,
    )


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_TEST_ANTHROPIC_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def provider(replay: Replay) -> AnthropicProvider:
    return AnthropicProvider(spec(), http_client=replay.client())


def test_is_a_provider() -> None:
    assert isinstance(AnthropicProvider(spec()), Provider)


def test_complete_sends_system_apart_and_reads_text_and_usage() -> None:
    replay = Replay(answer_with(recorded("anthropic_message.json")))
    completion = provider(replay).complete(REQUEST, timeout=10)

    assert completion.text == (
        "Pour configurer votre Livebox 6, branchez-la sur la prise fibre "
        "puis suivez l'assistant d'installation [1]."
    )
    # cache reads are prompt tokens too: budgets count them
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (440, 29)
    assert completion.model == "claude-haiku-4-5-20251001"
    assert completion.finish_reason == "stop"

    sent = replay.last
    assert sent.method == "POST"
    assert sent.url.host == "api.anthropic.com" and sent.url.path == "/v1/messages"
    # this SDK version sends the key as a bearer token; older ones used x-api-key
    sent_key = sent.headers.get("x-api-key") or sent.headers["authorization"].removeprefix(
        "Bearer "
    )
    assert sent_key == KEY
    assert "anthropic-version" in sent.headers
    body = replay.last_json()
    assert body["model"] == "claude-haiku-4-5"
    assert body["system"] == f"{SYSTEM}\n\n{DOCUMENTS}"
    assert body["messages"] == [{"role": "user", "content": QUESTION}]
    assert body["max_tokens"] == 300
    assert body["stop_sequences"] == ["FIN"]
    assert "stream" not in body


def test_stream_yields_text_deltas_and_usage_from_events() -> None:
    replay = Replay(answer_with(recorded("anthropic_stream.sse")))
    events = list(provider(replay).stream(REQUEST, timeout=10))

    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert deltas == ["Redémarrez", " la Livebox", " puis patientez", " deux minutes [1]."]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert sum(isinstance(event, StreamEnd) for event in events) == 1
    assert end.completion.text == "".join(deltas)
    assert (end.completion.usage.prompt_tokens, end.completion.usage.completion_tokens) == (440, 14)
    assert end.completion.finish_reason == "length"  # stop_reason max_tokens
    assert replay.last_json()["stream"] is True


def test_overloaded_error_event_inside_a_stream_is_retryable() -> None:
    replay = Replay(answer_with(recorded("anthropic_stream_overloaded.sse")))
    received: list[str] = []
    with pytest.raises(ModelError, match="overloaded") as caught:
        for event in provider(replay).stream(REQUEST, timeout=10):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert received == ["Redémarrez"]
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    ("recording", "status", "headers", "error", "retryable", "words"),
    [
        ("anthropic_error_400.json", 400, {}, InvalidInputError, None, "prompt is too long"),
        ("anthropic_error_401.json", 401, {}, ConfigError, None, "ALLO_TEST_ANTHROPIC_KEY"),
        ("anthropic_error_404.json", 404, {}, ConfigError, None, "does not serve model"),
        ("anthropic_error_429.json", 429, {"retry-after": "17"}, ModelError, True, "in 17 s"),
        ("anthropic_error_500.json", 500, {}, ModelError, True, "server-side error"),
        ("anthropic_error_529.json", 529, {}, ModelError, True, "overloaded"),
    ],
)
def test_http_errors_map_to_the_allo_tree(
    recording: str,
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    retryable: bool | None,
    words: str,
) -> None:
    replay = Replay(answer_with(recorded(recording, status, headers)))
    for call in (
        lambda p: p.complete(REQUEST, timeout=5),
        lambda p: list(p.stream(REQUEST, timeout=5)),
    ):
        with pytest.raises(error) as caught:
            call(provider(replay))
        assert type(caught.value) is error
        assert words in str(caught.value)
        if retryable is not None:
            assert caught.value.retryable is retryable  # type: ignore[attr-defined]
        assert KEY not in str(caught.value) and QUESTION not in str(caught.value)
    assert len(replay.requests) == 2  # max_retries=0


def test_timeout_and_connection_refused() -> None:
    replay = Replay(fail_with(httpx2.ReadTimeout))
    with pytest.raises(ModelTimeoutError, match="within 3 s"):
        provider(replay).complete(REQUEST, timeout=3)
    with pytest.raises(ModelTimeoutError):
        list(provider(replay).stream(REQUEST, timeout=3))

    closed = AnthropicProvider(spec(base_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(ModelError, match="cannot reach") as caught:
        closed.complete(REQUEST, timeout=5)
    assert caught.value.retryable is True and type(caught.value) is ModelError


def test_conversation_must_start_with_a_user_turn() -> None:
    replay = Replay(answer_with(recorded("anthropic_message.json")))
    only_system = ChatRequest(messages=(ChatMessage(Role.SYSTEM, SYSTEM),))
    with pytest.raises(InvalidInputError, match="starts with a user message"):
        provider(replay).complete(only_system, timeout=5)
    assert replay.requests == []


def test_check_asks_for_the_model_without_spending_tokens() -> None:
    replay = Replay(answer_with(recorded("anthropic_model.json")))
    status = provider(replay).check()
    assert status.reachable, status.detail
    assert replay.last.method == "GET"
    assert replay.last.url.path == "/v1/models/claude-haiku-4-5"
    assert status.extra["model"] == "claude-haiku-4-5-20251001"

    refused = Replay(answer_with(recorded("anthropic_error_401.json", 401)))
    status = provider(refused).check()
    assert not status.reachable and "refused the API key" in status.detail


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALLO_TEST_ANTHROPIC_KEY")
    replay = Replay(answer_with(recorded("anthropic_message.json")))
    with pytest.raises(ConfigError, match="ALLO_TEST_ANTHROPIC_KEY"):
        provider(replay).complete(REQUEST, timeout=5)
    assert not provider(replay).check().reachable
    assert replay.requests == []


def test_key_and_request_text_stay_out_of_allo_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="allo")
    for name, status in (("anthropic_message.json", 200), ("anthropic_error_529.json", 529)):
        with contextlib.suppress(ModelError):
            provider(Replay(answer_with(recorded(name, status)))).complete(REQUEST, timeout=5)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("allo"))
    assert KEY not in text and QUESTION not in text
