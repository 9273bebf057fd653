"""A call through the gateway: who asks, with what data, and what came back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from allo.gateway.config import DataClass, ModelSpec
from allo.gateway.protocol import ChatRequest, Completion, TextDelta


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: budgets and the audit log are kept per team."""

    user: str = "anonymous"
    team: str = "default"


@dataclass(frozen=True, slots=True)
class DocumentUse:
    """A document whose passages a request carries; its tags set the data class."""

    id: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayCall:
    """One request to the gateway.

    ``model`` is a declared model name (``None``: the default model); the gateway may
    serve it with a fallback model the policy allows, never with a forbidden one.
    """

    request: ChatRequest
    caller: Caller = Caller()
    model: str | None = None
    documents: tuple[DocumentUse, ...] = ()
    purpose: str = "answer"


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """What the gateway returns: the completion (PII placeholders already restored),
    the model that served it, the data class and what was redacted on the way."""

    completion: Completion
    model: ModelSpec
    data_class: DataClass
    redacted: dict[str, int] = field(default_factory=dict)
    attempts: tuple[str, ...] = ()
    audit_id: str = ""
    latency_ms: float = 0.0


class ModelGateway(Protocol):
    """What callers of the gateway rely on (``allo.gateway.service.Gateway`` implements it).

    Both methods raise ``PolicyRefusal`` when no model allowed for the data can serve the
    call, ``BudgetExceededError`` / ``RateLimitedError`` when the team is over its limits,
    and ``ModelError`` when every allowed model in the chain failed.
    """

    def complete(self, call: GatewayCall) -> GatewayResult:
        """The whole completion."""
        ...

    def stream(self, call: GatewayCall) -> Iterator[TextDelta | GatewayResult]:
        """Text deltas as they come (placeholders restored), then exactly one result."""
        ...
