"""A scripted language-model provider for tests of the gateway and of what calls it.

It implements ``allo.gateway.protocol.Provider`` with no model: the answer is a fixed
text in which ``{user}`` stands for the last user message (so a test sees what the
model received), streamed three characters at a time; ``failures`` are raised first,
one per call.
"""

from __future__ import annotations

from collections.abc import Iterator

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


class ScriptedProvider:
    """Answers every request with ``answer``; ``seen`` keeps the requests it received."""

    def __init__(
        self, name: str, answer: str = "Réponse [1].", failures: list[Exception] | None = None
    ) -> None:
        self._name = name
        self.answer = answer
        self.failures = list(failures or [])
        self.seen: list[ChatRequest] = []

    @property
    def name(self) -> str:
        return self._name

    def _reply(self, request: ChatRequest) -> str:
        self.seen.append(request)
        if self.failures:
            raise self.failures.pop(0)
        user = [m.content for m in request.messages if m.role is Role.USER]
        return self.answer.replace("{user}", user[-1] if user else "")

    def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        return Completion(self._reply(request), Usage(100, 20), self._name)

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        text = self._reply(request)
        for start in range(0, len(text), 3):
            yield TextDelta(text[start : start + 3])
        yield StreamEnd(Completion(text, Usage(100, 20), self._name))

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return sum(len(m.content) for m in messages) // 4

    def check(self) -> Reachability:
        return Reachability(True)
