"""Anthropic's Messages API, through the official ``anthropic`` SDK.

The Messages API differs from the OpenAI chat format in three ways handled here: system
instructions are a separate ``system`` field (not a message), ``max_tokens`` is
required, and a stream is a sequence of typed events (``message_start`` with the prompt
tokens, ``content_block_delta`` with text, ``message_delta`` with the stop reason and
output tokens). HTTP 529 means Anthropic is overloaded: retryable, like a 5xx.

The SDK of this version has no ``temperature`` parameter (Anthropic's current models
fix sampling themselves), so ``ChatRequest.temperature`` is not sent. The SDK retries
nothing (``max_retries=0``): the gateway owns retries and fallbacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from allo.errors import AlloError, ConfigError, InvalidInputError, ModelError, ModelTimeoutError
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
    read_api_key,
    retry_after_seconds,
    safe_detail,
    status_error,
)

if TYPE_CHECKING:
    import anthropic
    import httpx2

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"

# Anthropic's stop reasons in the protocol's words; others (refusal, pause_turn) pass as-is.
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}

# The HTTP status an ``event: error`` inside a stream stands for (the stream itself was 200).
_STREAM_ERROR_STATUS = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
    "request_too_large": 413,
    "api_error": 500,
}


class AnthropicProvider:
    """A Claude model behind Anthropic's Messages API."""

    def __init__(self, spec: ModelSpec, *, http_client: httpx2.Client | None = None) -> None:
        """Store the configuration; the client (and the key) is made on first use.

        The key is read from ``spec.api_key_env``, or from ``ANTHROPIC_API_KEY`` when the
        spec names no variable (the SDK's own convention). ``http_client`` replaces the
        SDK's HTTP client (tests pass one with a mock transport).
        """
        self.spec = spec
        self._http_client = http_client
        self._client: anthropic.Anthropic | None = None
        self._lock = threading.Lock()
        self._base_url = spec.base_url or DEFAULT_BASE_URL
        self._label = f"Anthropic ({self._base_url})"
        self._key_env = spec.api_key_env or DEFAULT_KEY_ENV

    @property
    def name(self) -> str:
        """The configured model name."""
        return self.spec.name

    # -- calls -------------------------------------------------------------------------

    def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        """The whole answer in one response."""
        import anthropic

        arguments = self._arguments(request)
        client = self._sdk()
        try:
            message = client.messages.create(**arguments, timeout=timeout)
        except anthropic.AnthropicError as exc:
            raise self._error(exc, request, timeout) from None
        text = "".join(block.text for block in message.content if block.type == "text")
        usage = message.usage
        prompt = (
            usage.input_tokens
            + (usage.cache_creation_input_tokens or 0)
            + (usage.cache_read_input_tokens or 0)
        )
        return Completion(
            text=text,
            usage=Usage(prompt, usage.output_tokens),
            model=message.model or self.spec.model,
            finish_reason=_finish(message.stop_reason),
        )

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        """Text deltas from ``content_block_delta`` events, then the completion.

        ``timeout`` bounds the whole answer, not only each read (see ``Deadline``).
        """
        import anthropic
        import httpx2

        arguments = self._arguments(request)
        client = self._sdk()
        deadline = Deadline(timeout, f"{self._label} ({self.spec.name})")
        pieces: list[str] = []
        prompt_tokens = 0
        output_tokens = 0
        finish_reason = "stop"
        model = self.spec.model
        try:
            events = client.messages.create(**arguments, stream=True, timeout=timeout)
            with events:
                for event in events:
                    deadline.check()
                    if event.type == "message_start":
                        model = event.message.model or model
                        start = event.message.usage
                        prompt_tokens = (
                            start.input_tokens
                            + (start.cache_creation_input_tokens or 0)
                            + (start.cache_read_input_tokens or 0)
                        )
                        output_tokens = start.output_tokens
                    elif event.type == "content_block_delta":
                        if event.delta.type == "text_delta" and event.delta.text:
                            pieces.append(event.delta.text)
                            yield TextDelta(event.delta.text)
                    elif event.type == "message_delta":
                        finish_reason = _finish(event.delta.stop_reason)
                        output_tokens = event.usage.output_tokens
        except anthropic.AnthropicError as exc:
            raise self._error(exc, request, timeout) from None
        except httpx2.TimeoutException:  # a read timing out mid-stream (not wrapped)
            raise self._timeout_error(timeout) from None
        except httpx2.TransportError:
            raise self._connection_error() from None
        usage = Usage(prompt_tokens, output_tokens)
        yield StreamEnd(Completion("".join(pieces), usage, model, finish_reason))

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """An estimate (see ``remote``); Anthropic's counting endpoint costs a round trip."""
        return estimate_chat_tokens(messages)

    def check(self) -> Reachability:
        """Ask for the configured model's description: checks the key and the model id
        without spending a token."""
        import anthropic

        try:
            client = self._sdk()
            model = client.models.retrieve(
                self.spec.model, timeout=min(CHECK_TIMEOUT_S, self.spec.timeout_s)
            )
        except ConfigError as exc:
            return Reachability(False, str(exc))
        except anthropic.AnthropicError as exc:
            return Reachability(False, str(self._error(exc, None, CHECK_TIMEOUT_S)))
        return Reachability(
            True,
            f"{self._label} serves {self.spec.model!r} and accepts the key in {self._key_env}",
            {"base_url": self._base_url, "model": model.id},
        )

    # -- helpers -----------------------------------------------------------------------

    def _sdk(self) -> anthropic.Anthropic:
        """The SDK client, made once (reads the key; ``ConfigError`` if it is missing)."""
        with self._lock:
            if self._client is None:
                try:
                    import anthropic
                except ImportError as exc:  # pragma: no cover - a core dependency
                    raise ConfigError(
                        "the anthropic package is missing: pip install allo (it is a dependency)"
                    ) from exc
                key = read_api_key(self.spec.model_copy(update={"api_key_env": self._key_env}))
                self._client = anthropic.Anthropic(
                    api_key=key,
                    base_url=self._base_url,
                    timeout=self.spec.timeout_s,
                    max_retries=0,
                    http_client=self._http_client,
                )
            return self._client

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create``: system text apart, turns in order."""
        system = "\n\n".join(m.content for m in request.messages if m.role is Role.SYSTEM)
        turns = [
            {"role": "user" if m.role is Role.USER else "assistant", "content": m.content}
            for m in request.messages
            if m.role is not Role.SYSTEM
        ]
        if not turns or turns[0]["role"] != "user":
            raise InvalidInputError(
                f"model {self.spec.name!r} (Anthropic) needs a conversation that starts with "
                "a user message after the system instructions"
            )
        arguments: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": request.max_tokens,
            "messages": turns,
        }
        if system:
            arguments["system"] = system
        if request.stop:
            arguments["stop_sequences"] = list(request.stop)
        return arguments

    def _timeout_error(self, timeout: float) -> ModelTimeoutError:
        return ModelTimeoutError(
            f"{self._label} did not answer within {timeout:g} s for {self.spec.name!r}; "
            "try again, raise timeout_s or ask for fewer tokens"
        )

    def _connection_error(self) -> ModelError:
        return ModelError(
            f"cannot reach {self._label} for {self.spec.name!r} (connection failed): check "
            "the network or base_url",
            retryable=True,
        )

    def _error(self, exc: Exception, request: ChatRequest | None, timeout: float) -> AlloError:
        """Allo's error for an SDK exception (never the SDK's own, never the key)."""
        import anthropic

        if isinstance(exc, anthropic.APITimeoutError):
            return self._timeout_error(timeout)
        if isinstance(exc, anthropic.APIConnectionError):
            return self._connection_error()
        if isinstance(exc, anthropic.APIStatusError):
            error_type = exc.type if isinstance(exc.type, str) else None
            status = exc.status_code
            if status < 400:  # an error event inside a stream that had started with 200
                status = _STREAM_ERROR_STATUS.get(error_type or "", 500)
            return status_error(
                self.spec,
                self._label,
                status,
                detail=safe_detail(exc.api_message, request),
                code=exc.error_code or error_type,
                retry_after=retry_after_seconds(exc.response.headers),
            )
        if isinstance(exc, anthropic.APIResponseValidationError):
            return ModelError(
                f"{self._label} sent a response that is not the Messages API format for "
                f"{self.spec.name!r}; check base_url",
                retryable=False,
            )
        logger.debug("anthropic SDK error of type %s", type(exc).__name__)
        return ModelError(
            f"the anthropic client failed for {self.spec.name!r} ({type(exc).__name__}); "
            "check the model's settings",
            retryable=False,
        )


def _finish(stop_reason: str | None) -> str:
    return _FINISH.get(stop_reason or "end_turn", stop_reason or "stop")
