"""A scripted model gateway for tests: replays given text as deltas, records the calls.

``ScriptedGateway`` implements ``allo.gateway.call.ModelGateway`` without any model or
policy: ``reply`` is the text to answer (or a function of the call, to write an
"obedient" model that does whatever its prompt asks), streamed in pieces of ``step``
characters. ``fail_after`` deltas it raises ``error`` instead (``0``: before any text).
``served_by`` is the model reported in the result: an extractive one simulates the
gateway falling back to the extractive answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from allo.errors import AlloError
from allo.gateway.call import GatewayCall, GatewayResult
from allo.gateway.config import DataClass, ModelSpec, ProviderKind
from allo.gateway.protocol import Completion, Provider, StreamEnd, TextDelta, Usage

SCRIPTED_MODEL = ModelSpec(
    name="scripted", provider=ProviderKind.LOCAL, gguf_path=Path("scripted.gguf")
)
EXTRACTIVE_MODEL = ModelSpec(name="extractive", provider=ProviderKind.EXTRACTIVE)

Reply = str | Callable[[GatewayCall], str]


class ScriptedGateway:
    """Answers every call with a scripted text; ``calls`` keeps what it was asked."""

    def __init__(
        self,
        reply: Reply = "",
        *,
        step: int = 7,
        served_by: ModelSpec = SCRIPTED_MODEL,
        data_class: DataClass = DataClass.PUBLIC,
        error: AlloError | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.reply = reply
        self.step = max(1, step)
        self.served_by = served_by
        self.data_class = data_class
        self.error = error
        self.fail_after = fail_after
        self.calls: list[GatewayCall] = []

    def _text(self, call: GatewayCall) -> str:
        self.calls.append(call)
        return self.reply(call) if callable(self.reply) else self.reply

    def _result(self, text: str, call: GatewayCall) -> GatewayResult:
        prompt = sum(len(message.content) for message in call.request.messages) // 3
        completion = Completion(text, Usage(prompt, len(text) // 3), self.served_by.name)
        return GatewayResult(completion, self.served_by, self.data_class, audit_id="scripted")

    def complete(self, call: GatewayCall) -> GatewayResult:
        """The whole scripted text (or the scripted error)."""
        text = self._text(call)
        if self.error is not None and self.fail_after is not None:
            raise self.error
        return self._result(text, call)

    def stream(self, call: GatewayCall) -> Iterator[TextDelta | GatewayResult]:
        """The scripted text in pieces of ``step`` characters, then the result."""
        text = self._text(call)
        return self._deltas(text, call)

    def _deltas(self, text: str, call: GatewayCall) -> Iterator[TextDelta | GatewayResult]:
        for sent, start in enumerate(range(0, len(text), self.step)):
            if self.error is not None and self.fail_after is not None and sent >= self.fail_after:
                raise self.error
            yield TextDelta(text[start : start + self.step])
        if self.error is not None and self.fail_after is not None:
            raise self.error
        yield self._result(text, call)


class ProviderGateway:
    """One provider behind the ``ModelGateway`` interface, with no policy, budget,
    redaction or audit: for tests and measurements of a model itself. Use
    ``allo.gateway.service.Gateway`` everywhere else."""

    def __init__(
        self, provider: Provider, spec: ModelSpec, data_class: DataClass = DataClass.PUBLIC
    ) -> None:
        self.provider = provider
        self.spec = spec
        self.data_class = data_class

    def complete(self, call: GatewayCall) -> GatewayResult:
        """The provider's completion."""
        completion = self.provider.complete(call.request, timeout=self.spec.timeout_s)
        return GatewayResult(completion, self.spec, self.data_class)

    def stream(self, call: GatewayCall) -> Iterator[TextDelta | GatewayResult]:
        """The provider's deltas, then the result."""
        for event in self.provider.stream(call.request, timeout=self.spec.timeout_s):
            if isinstance(event, StreamEnd):
                yield GatewayResult(event.completion, self.spec, self.data_class)
            else:
                yield event
