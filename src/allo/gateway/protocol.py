"""What every language-model provider offers the gateway, whatever is behind it.

Providers are synchronous: the web app runs them in its worker threads and streams
their output as server-sent events; the local runtime (llama.cpp) is synchronous anyway.

Errors follow ``allo.errors``: a provider raises ``ConfigError`` for a missing key or
model file, ``InvalidInputError`` for a request it can never serve (too long for the
context), ``ModelTimeoutError`` when it ran out of time, and ``ModelError`` with
``retryable`` telling whether the same call may succeed later (server busy or down:
yes; model refuses the request, bad response shape: no). Never a bare SDK exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from allo.domain import Passage


class Role(StrEnum):
    """Who says a message in a chat."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of a chat."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Grounding:
    """The question and passages a request is about, kept as structure.

    Language-model providers only see ``ChatRequest.messages`` (where the passages are
    quoted as data); the extractive provider answers from this directly, with no model.
    """

    question: str
    lang: str
    passages: tuple[Passage, ...]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat completion request, provider-neutral."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int = 400
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    grounding: Grounding | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens counted by the provider (or estimated where it does not say)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished answer: its text, token counts, the model that wrote it and why it stopped.

    ``finish_reason`` is ``"stop"`` (natural end or a stop string), ``"length"``
    (``max_tokens`` reached) or a provider's own word.
    """

    text: str
    usage: Usage
    model: str
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of text as the model produces it."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of a stream: the whole completion, usage included."""

    completion: Completion


StreamEvent = TextDelta | StreamEnd


@dataclass(frozen=True, slots=True)
class Reachability:
    """Whether a provider can serve now, and why not in words a person can act on."""

    reachable: bool
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    """One model behind one API; the gateway adds policy, retries, budgets and audit."""

    @property
    def name(self) -> str:
        """The configured model name (``ModelSpec.name``)."""
        ...

    def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        """The whole answer at once."""
        ...

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        """``TextDelta`` events as the text comes, then exactly one ``StreamEnd``."""
        ...

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Tokens the messages take in this model's prompt (estimated if no tokenizer)."""
        ...

    def check(self) -> Reachability:
        """Cheap check that the model can be used (file present, server answering)."""
        ...
