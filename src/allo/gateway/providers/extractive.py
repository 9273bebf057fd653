"""The model that is always there: sentences taken from the passages, no language model.

It is the gateway's last resort (every fallback chain ends here) and the default when
no model is configured, so it must never fail for a reason outside the request: it
needs no file, no server and no key, and costs no token. It only answers from
documents: a request without ``grounding`` is one it can never serve.
"""

from __future__ import annotations

from collections.abc import Iterator

from allo.errors import InvalidInputError
from allo.gateway.protocol import (
    ChatMessage,
    ChatRequest,
    Completion,
    Reachability,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)
from allo.knowledge.answer import ExtractiveAnswerer

MODEL_ID = "extractive"
# ``Completion.finish_reason`` when the passages do not answer the question and the text
# is the "I don't know, an advisor can help" message (the answerer's abstention).
ABSTAINED = "abstained"


class ExtractiveProvider:
    """Answers ``request.grounding`` with ``ExtractiveAnswerer``; reads no message."""

    def __init__(self, answerer: ExtractiveAnswerer, *, name: str = MODEL_ID) -> None:
        """``answerer`` carries the abstention threshold and the procedure lookup."""
        self.answerer = answerer
        self._name = name

    @property
    def name(self) -> str:
        """The configured model name."""
        return self._name

    def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        """The extractive answer (or the abstention message) to the grounded question.

        ``timeout`` is not needed: the answer takes milliseconds and cannot hang.
        """
        grounding = request.grounding
        if grounding is None:
            raise InvalidInputError(
                "the extractive model only answers from documents: this request carries "
                "no question and passages (grounding); send it to a language model instead"
            )
        answer = self.answerer.answer(
            grounding.question, grounding.lang, grounding.passages, MODEL_ID
        )
        return Completion(
            text=answer.text,
            usage=Usage(0, 0),
            model=MODEL_ID,
            finish_reason=ABSTAINED if answer.abstained else "stop",
        )

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        """The whole answer as one delta, then the end (there is nothing to wait for)."""
        completion = self.complete(request, timeout=timeout)
        yield TextDelta(completion.text)
        yield StreamEnd(completion)

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Zero: no model reads the messages, so they cost nothing and fit any context."""
        return 0

    def check(self) -> Reachability:
        """Always reachable: nothing to load, nothing to call."""
        return Reachability(True, "extractive answers need no model")
