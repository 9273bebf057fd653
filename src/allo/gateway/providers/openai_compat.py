"""Any OpenAI-compatible chat server, through the official ``openai`` SDK.

One class serves OpenAI itself and the servers that speak its API: vLLM, Ollama,
llama.cpp's server (``python -m llama_cpp.server``), Mistral's API. The SDK retries
nothing (``max_retries=0``): the gateway decides on retries and fallbacks, knowing the
budget and the other models, and a hidden retry inside would double latency and cost.

Two differences between servers are handled here:

* the output limit is sent as ``max_completion_tokens`` to api.openai.com (its newer
  models refuse ``max_tokens``) and as ``max_tokens`` elsewhere (llama.cpp's server
  ignores the newer name and would generate until the context is full);
* streams ask for usage (``stream_options.include_usage``); servers that do not send it
  (llama.cpp's) get an estimate (see ``remote``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from allo.errors import AlloError, ConfigError, ModelError, ModelTimeoutError
from allo.gateway.config import ModelSpec
from allo.gateway.protocol import (
    ChatMessage,
    ChatRequest,
    Completion,
    Reachability,
    Role,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)
from allo.gateway.providers.remote import (
    CHECK_TIMEOUT_S,
    Deadline,
    estimate_chat_tokens,
    estimate_text_tokens,
    read_api_key,
    retry_after_seconds,
    safe_detail,
    status_error,
)

if TYPE_CHECKING:
    import httpx2
    import openai

logger = logging.getLogger(__name__)

# Sent when the spec names no key variable: local servers accept any bearer token, and
# an explicit value keeps the SDK from picking up OPENAI_API_KEY and sending it there.
NO_KEY = "no-key"


class OpenAICompatibleProvider:
    """A chat model behind an OpenAI-compatible HTTP API."""

    def __init__(self, spec: ModelSpec, *, http_client: httpx2.Client | None = None) -> None:
        """Store the configuration; the client (and the key) is made on first use.

        ``http_client`` replaces the SDK's HTTP client (tests pass one with a mock
        transport; deployments may pass one with a proxy or custom certificates).
        """
        self.spec = spec
        self._http_client = http_client
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self._label = f"the server at {spec.base_url}"
        self._stream_usage = True  # ask streams for usage until the server refuses it

    @property
    def name(self) -> str:
        """The configured model name."""
        return self.spec.name

    # -- calls -------------------------------------------------------------------------

    def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        """The whole answer in one response."""
        import openai

        client = self._sdk()
        try:
            response = client.chat.completions.create(**self._arguments(request), timeout=timeout)
        except openai.OpenAIError as exc:
            raise self._error(exc, request, timeout) from None
        if not response.choices:
            raise ModelError(
                f"{self._label} returned no choice for {self.spec.name!r}; try again",
                retryable=True,
            )
        choice = response.choices[0]
        text = choice.message.content or ""
        if response.usage is not None:
            usage = Usage(response.usage.prompt_tokens, response.usage.completion_tokens)
        else:
            usage = self._estimated_usage(request, text)
        return Completion(
            text=text,
            usage=usage,
            model=response.model or self.spec.model,
            finish_reason=choice.finish_reason or "stop",
        )

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        """Text deltas as the server sends them, then the completion with its usage.

        ``timeout`` bounds the whole answer, not only each read (see ``Deadline``).
        """
        import openai

        client = self._sdk()
        deadline = Deadline(timeout, f"{self._label} ({self.spec.name})")
        pieces: list[str] = []
        usage: Usage | None = None
        finish_reason = "stop"
        model = self.spec.model
        try:
            events = self._open_stream(client, request, timeout)
            with events:
                for chunk in events:
                    deadline.check()
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    if choice.finish_reason is not None:
                        finish_reason = choice.finish_reason
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        yield TextDelta(choice.delta.content)
        except openai.OpenAIError as exc:
            raise self._error(exc, request, timeout) from None
        text = "".join(pieces)
        if usage is None:
            usage = self._estimated_usage(request, text)
        yield StreamEnd(Completion(text, usage, model, finish_reason))

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """An estimate: the server's tokenizer is not available offline (see ``remote``)."""
        return estimate_chat_tokens(messages)

    def check(self) -> Reachability:
        """List the server's models (a few milliseconds, no tokens spent).

        Reachable only if the server answers *and* serves the configured model; servers
        that serve one model whatever the name (llama.cpp's) still list their alias.
        """
        import openai

        try:
            client = self._sdk()
            page = client.models.list(timeout=min(CHECK_TIMEOUT_S, self.spec.timeout_s))
            served = [model.id for model in page.data]
        except ConfigError as exc:
            return Reachability(False, str(exc))
        except openai.OpenAIError as exc:
            return Reachability(False, str(self._error(exc, None, CHECK_TIMEOUT_S)))
        extra = {"base_url": str(self.spec.base_url), "models": ", ".join(served[:20])}
        if self.spec.model not in served:
            shown = ", ".join(served[:5]) or "none"
            return Reachability(
                False,
                f"{self._label} answers but does not serve model {self.spec.model!r} "
                f"(it serves: {shown}); fix 'model' of {self.spec.name!r}",
                extra,
            )
        return Reachability(True, f"{self._label} serves {self.spec.model!r}", extra)

    # -- helpers -----------------------------------------------------------------------

    def _sdk(self) -> openai.OpenAI:
        """The SDK client, made once (reads the key; ``ConfigError`` if it is missing)."""
        with self._lock:
            if self._client is None:
                try:
                    import openai
                except ImportError as exc:  # pragma: no cover - a core dependency
                    raise ConfigError(
                        "the openai package is missing: pip install allo (it is a dependency)"
                    ) from exc
                key = read_api_key(self.spec)
                self._client = openai.OpenAI(
                    api_key=key or NO_KEY,
                    base_url=self.spec.base_url,
                    timeout=self.spec.timeout_s,
                    max_retries=0,
                    http_client=self._http_client,
                )
            return self._client

    def _open_stream(self, client: openai.OpenAI, request: ChatRequest, timeout: float) -> Any:
        """Start a stream, asking for usage where the server accepts the option.

        Servers with strict request validation (Mistral's API, some proxies) refuse the
        unknown ``stream_options`` with a 400 or 422 naming it: the stream is then asked
        for again without it, and never again with it on this provider.
        """
        import openai

        arguments = self._arguments(request)
        if self._stream_usage:
            try:
                return client.chat.completions.create(
                    **arguments,
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=timeout,
                )
            except openai.APIStatusError as exc:
                if exc.status_code not in (400, 422) or "stream_options" not in str(exc.body):
                    raise
                logger.info("%s refuses stream_options; streams will estimate usage", self.name)
                self._stream_usage = False
        return client.chat.completions.create(**arguments, stream=True, timeout=timeout)

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request``."""
        arguments: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [_message(message) for message in request.messages],
            "temperature": request.temperature,
        }
        limit_name = "max_completion_tokens" if _is_openai_cloud(self.spec) else "max_tokens"
        arguments[limit_name] = request.max_tokens
        if request.stop:
            arguments["stop"] = list(request.stop)
        return arguments

    def _estimated_usage(self, request: ChatRequest, text: str) -> Usage:
        return Usage(self.count_tokens(request.messages), estimate_text_tokens(text))

    def _error(self, exc: Exception, request: ChatRequest | None, timeout: float) -> AlloError:
        """Allo's error for an SDK exception (never the SDK's own, never the key)."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return ModelTimeoutError(
                f"{self._label} did not answer within {timeout:g} s for {self.spec.name!r}; "
                "try again, raise timeout_s or ask for fewer tokens"
            )
        if isinstance(exc, openai.APIConnectionError):
            return ModelError(
                f"cannot reach {self._label} for {self.spec.name!r} (connection failed): "
                "check that the server runs and that base_url is right",
                retryable=True,
            )
        if isinstance(exc, openai.APIStatusError):
            body = exc.body
            detail = body.get("message") if isinstance(body, dict) else None
            return status_error(
                self.spec,
                self._label,
                exc.status_code,
                detail=safe_detail(detail, request),
                code=exc.code,
                retry_after=retry_after_seconds(exc.response.headers),
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return ModelError(
                f"{self._label} sent a response that is not OpenAI's chat format for "
                f"{self.spec.name!r}; check that base_url points to an OpenAI-compatible API",
                retryable=False,
            )
        if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
            return ModelError(
                f"{self._label} reported an error for {self.spec.name!r} "
                f"({safe_detail(exc.message, request)}); try again",
                retryable=True,
            )
        logger.debug("openai SDK error of type %s", type(exc).__name__)
        return ModelError(
            f"the openai client failed for {self.spec.name!r} ({type(exc).__name__}); "
            "check the model's settings",
            retryable=False,
        )


def _is_openai_cloud(spec: ModelSpec) -> bool:
    host = urlsplit(spec.base_url or "").hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.azure.com")


def _message(message: ChatMessage) -> Any:
    """One message in the chat format (a plain dict; the SDK's types are TypedDicts)."""
    role = {Role.SYSTEM: "system", Role.USER: "user", Role.ASSISTANT: "assistant"}[message.role]
    return {"role": role, "content": message.content}
