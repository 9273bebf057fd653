"""The OpenAI-compatible provider against recorded OpenAI responses (chat.completions)."""

from __future__ import annotations

import contextlib
import json
import logging
import types

import httpx2
import pytest

from allo.errors import ConfigError, InvalidInputError, ModelError, ModelTimeoutError
from allo.gateway.config import DataLocation, ModelSpec, ProviderKind
from allo.gateway.protocol import (
    ChatMessage,
    ChatRequest,
    Provider,
    Role,
    StreamEnd,
    TextDelta,
)
from allo.gateway.providers import remote
from allo.gateway.providers.openai_compat import NO_KEY, OpenAICompatibleProvider
from allo.testing.llama_server import free_port

from .replay import RECORDINGS, Replay, answer_with, fail_with, recorded

KEY = "sk-test-a1b2c3d4e5f6g7h8i9j0k1l2m3n4f2a"
SYSTEM = "Tu es l'assistant d'un opérateur télécom. Réponds uniquement à partir des documents."
QUESTION = "Comment configurer ma Livebox 6 ? Mon numéro client est 0612345678."
REQUEST = ChatRequest(
    messages=(
        ChatMessage(Role.SYSTEM, SYSTEM),
        ChatMessage(Role.USER, QUESTION),
    ),
    max_tokens=64,
    stop=("\n\n\n",),
)


def spec(
    base_url: str = "https://api.openai.com/v1", key_env: str | None = "ALLO_TEST_OPENAI_KEY"
) -> ModelSpec:
    return ModelSpec(
        name="cloud",
        provider=ProviderKind.OPENAI,
        model="gpt-4o-mini",
        base_url=base_url,
        api_key_env=key_env,
        location=DataLocation.EXTERNAL,
    )


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_TEST_OPENAI_KEY", KEY)


def provider(replay: Replay, **kwargs: str | None) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(spec(**kwargs), http_client=replay.client())


def test_is_a_provider() -> None:
    assert isinstance(OpenAICompatibleProvider(spec()), Provider)


def test_complete_sends_the_chat_request_and_reads_text_and_usage() -> None:
    replay = Replay(answer_with(recorded("openai_chat_completion.json")))
    completion = provider(replay).complete(REQUEST, timeout=10)

    assert completion.text.startswith("Branchez la Livebox 6 sur la prise fibre")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (412, 31)
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.finish_reason == "stop"

    sent = replay.last
    assert sent.method == "POST"
    assert sent.url.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = replay.last_json()
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    # api.openai.com: the newer name (its reasoning models refuse max_tokens)
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    assert body["temperature"] == 0.0
    assert body["stop"] == ["\n\n\n"]
    assert "stream" not in body


def test_other_servers_get_max_tokens() -> None:
    replay = Replay(answer_with(recorded("openai_chat_completion.json")))
    provider(replay, base_url="http://10.1.2.3:8000/v1").complete(REQUEST, timeout=10)
    body = replay.last_json()
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    assert replay.last.url.host == "10.1.2.3"


def test_local_server_without_key_variable_gets_a_placeholder_not_the_environment_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-leave")
    replay = Replay(answer_with(recorded("openai_chat_completion.json")))
    provider(replay, base_url="http://127.0.0.1:8080/v1", key_env=None).complete(REQUEST, timeout=5)
    assert replay.last.headers["authorization"] == f"Bearer {NO_KEY}"


def test_stream_yields_deltas_then_one_end_with_the_server_usage() -> None:
    replay = Replay(answer_with(recorded("openai_chat_stream.sse")))
    events = list(provider(replay).stream(REQUEST, timeout=10))

    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert deltas == [
        "Redémarrez",
        " la",
        " Livebox",
        " puis",
        " patientez",
        " 2",
        " minutes",
        " [1].",
    ]
    assert isinstance(events[-1], StreamEnd)
    assert sum(isinstance(event, StreamEnd) for event in events) == 1
    completion = events[-1].completion
    assert completion.text == "".join(deltas)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (405, 12)
    assert completion.finish_reason == "stop"
    body = replay.last_json()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_stream_without_usage_is_estimated() -> None:
    lines = (RECORDINGS / "openai_chat_stream.sse").read_text(encoding="utf-8").split("\n\n")
    without_usage = "\n\n".join(line for line in lines if '"choices":[]' not in line)
    replay = Replay(
        answer_with(
            httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=without_usage
            )
        )
    )
    events = list(provider(replay).stream(REQUEST, timeout=10))
    completion = events[-1].completion  # type: ignore[union-attr]
    assert completion.text == "Redémarrez la Livebox puis patientez 2 minutes [1]."
    assert completion.usage.prompt_tokens == remote.estimate_chat_tokens(REQUEST.messages)
    assert completion.usage.completion_tokens == remote.estimate_text_tokens(completion.text)
    assert completion.usage.completion_tokens > 0


def test_server_refusing_stream_options_is_asked_again_without_them() -> None:
    refusal = {
        "detail": [
            {
                "type": "extra_forbidden",
                "loc": ["body", "stream_options"],
                "msg": "Extra inputs are not permitted",
            }
        ]
    }

    def strict(request: httpx2.Request) -> httpx2.Response:
        if "stream_options" in json.loads(request.content):
            return httpx2.Response(422, json=refusal)
        return recorded("openai_chat_stream.sse")

    replay = Replay(strict)
    local = provider(replay, base_url="https://api.mistral.example/v1")
    events = list(local.stream(REQUEST, timeout=10))
    assert events[-1].completion.text.startswith("Redémarrez")  # type: ignore[union-attr]
    assert len(replay.requests) == 2
    list(local.stream(REQUEST, timeout=10))
    assert len(replay.requests) == 3  # remembered: no refused first attempt any more
    assert "stream_options" not in replay.last_json()


def test_stream_stops_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # A scripted clock: every reading is one second later. The stream has 11 events;
    # a 4-second budget is spent after the first few.
    ticks = iter(range(1000))
    monkeypatch.setattr(remote, "time", types.SimpleNamespace(monotonic=lambda: next(ticks)))
    replay = Replay(answer_with(recorded("openai_chat_stream.sse")))
    received: list[str] = []
    with pytest.raises(ModelTimeoutError, match="within 4 s"):
        for event in provider(replay).stream(REQUEST, timeout=4):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert 0 < len(received) < 8


@pytest.mark.parametrize(
    ("recording", "status", "headers", "error", "retryable", "words"),
    [
        ("openai_error_400.json", 400, {}, InvalidInputError, None, "maximum context length"),
        ("openai_error_401.json", 401, {}, ConfigError, None, "ALLO_TEST_OPENAI_KEY"),
        ("openai_error_404.json", 404, {}, ConfigError, None, "does not serve model 'gpt-4o-mini'"),
        ("openai_error_429.json", 429, {"retry-after": "2"}, ModelError, True, "try again in 2 s"),
        ("openai_error_429_quota.json", 429, {}, ModelError, False, "quota"),
        ("openai_error_500.json", 500, {}, ModelError, True, "server-side error"),
        ("openai_error_500.json", 503, {}, ModelError, True, "HTTP 503"),
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
        assert KEY not in str(caught.value) and "4f2a" not in str(caught.value)
        assert QUESTION not in str(caught.value)
    assert len(replay.requests) == 2  # max_retries=0: the gateway decides on retries


def test_provider_message_quoting_the_request_is_withheld() -> None:
    body = {"error": {"message": f"Invalid content: '{QUESTION}'", "type": "invalid_request_error"}}
    replay = Replay(answer_with(httpx2.Response(400, json=body)))
    with pytest.raises(InvalidInputError) as caught:
        provider(replay).complete(REQUEST, timeout=5)
    assert "0612345678" not in str(caught.value)
    assert "withheld" in str(caught.value)


def test_timeout_becomes_model_timeout() -> None:
    replay = Replay(fail_with(httpx2.ReadTimeout))
    with pytest.raises(ModelTimeoutError, match="within 7 s"):
        provider(replay).complete(REQUEST, timeout=7)
    with pytest.raises(ModelTimeoutError):
        list(provider(replay).stream(REQUEST, timeout=7))


def test_connection_refused_is_retryable() -> None:
    closed = OpenAICompatibleProvider(spec(base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(ModelError, match="cannot reach") as caught:
        closed.complete(REQUEST, timeout=5)
    assert caught.value.retryable is True
    assert type(caught.value) is ModelError


def test_missing_key_is_a_config_error_that_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ALLO_TEST_OPENAI_KEY")
    replay = Replay(answer_with(recorded("openai_chat_completion.json")))
    with pytest.raises(ConfigError, match="set the environment variable ALLO_TEST_OPENAI_KEY"):
        provider(replay).complete(REQUEST, timeout=5)
    status = provider(replay).check()
    assert not status.reachable and "ALLO_TEST_OPENAI_KEY" in status.detail
    assert replay.requests == []


def test_check_lists_the_models() -> None:
    replay = Replay(answer_with(recorded("openai_models.json")))
    status = provider(replay).check()
    assert status.reachable, status.detail
    assert replay.last.method == "GET" and replay.last.url.path == "/v1/models"
    assert "gpt-4o-mini" in status.extra["models"]

    other = OpenAICompatibleProvider(
        spec().model_copy(update={"model": "gpt-9-turbo"}), http_client=replay.client()
    )
    status = other.check()
    assert not status.reachable and "does not serve model 'gpt-9-turbo'" in status.detail


def test_check_reports_auth_failure_and_unreachable_server() -> None:
    replay = Replay(answer_with(recorded("openai_error_401.json", 401)))
    status = provider(replay).check()
    assert not status.reachable and "refused the API key" in status.detail

    closed = OpenAICompatibleProvider(spec(base_url=f"http://127.0.0.1:{free_port()}/v1"))
    status = closed.check()
    assert not status.reachable and "cannot reach" in status.detail


def test_count_tokens_is_a_high_estimate() -> None:
    short = (ChatMessage(Role.USER, "Bonjour"),)
    long = (ChatMessage(Role.USER, "Bonjour " * 100),)
    p = OpenAICompatibleProvider(spec())
    assert 0 < p.count_tokens(short) < p.count_tokens(long)
    # French BPE runs about 4 characters per token: the estimate must not fall below it
    assert p.count_tokens(long) >= len("Bonjour " * 100) / 4


def test_key_and_request_text_stay_out_of_allo_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="allo")
    for name, status in (("openai_chat_completion.json", 200), ("openai_error_401.json", 401)):
        replay = Replay(answer_with(recorded(name, status)))
        with contextlib.suppress(ConfigError):
            provider(replay).complete(REQUEST, timeout=5)
    allo_records = [r for r in caplog.records if r.name.startswith("allo")]
    text = "\n".join(r.getMessage() for r in allo_records)
    assert KEY not in text and QUESTION not in text and SYSTEM not in text


def test_recordings_are_valid_wire_format() -> None:
    # Every data line of the stream is JSON, and the stream ends with [DONE].
    lines = (RECORDINGS / "openai_chat_stream.sse").read_text(encoding="utf-8").splitlines()
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    for item in data[:-1]:
        assert json.loads(item)["object"] == "chat.completion.chunk"
