"""``POST /v1/ask``: a cited answer from the knowledge base, extractive or generated.

With ``stream: true`` the answer comes as server-sent events:

- ``sentence`` ``{"text", "separator", "citations", "supported"}``: a sentence of the
  model's answer, checked against the passages; show ``separator + text``;
- ``replace`` ``{"answer": AskResponse}``: discard what was shown, show this instead (the
  extractive answer, when the model's failed its check or the model failed);
- ``answer`` ``AskResponse``: the last event, the whole result;
- ``error`` ``{"type", "message"}``: the stream ended on a failure.

Refusals known before any text (unknown model, policy, budget, rate limit) are plain
HTTP errors (403, 422, 429), not events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse

from allo.errors import AlloError
from allo.gateway.call import Caller
from allo.knowledge.grounded import AnswerEvent, FinalEvent, ReplaceEvent, SentenceEvent
from allo.knowledge.service import KnowledgeBase
from allo.web.auth import ANONYMOUS, api_caller
from allo.web.dependencies import knowledge
from allo.web.schemas import AskRequest, AskResponse, CitationOut

router = APIRouter(prefix="/v1", tags=["answers"])


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def ask(
    body: AskRequest,
    kb: Annotated[KnowledgeBase, Depends(knowledge)],
    caller: Annotated[Caller | None, Depends(api_caller)],
) -> AskResponse | StreamingResponse:
    """Answer from the documents only, with numbered citations, or abstain.

    Without ``model`` (or with the extractive one) the answer is sentences taken from
    the passages. With a language model, it writes from the retrieved passages only;
    every sentence is checked against them, and the extractive answer is shown instead
    when the check fails (``fallback``). ``abstained`` is true when nothing relevant
    enough was found: the answer then says so and offers an advisor.
    """
    if not kb.uses_model(body.model):
        answer = kb.ask(body.question, body.mode, body.lang)
        return AskResponse.of(answer)
    if caller is None:
        if kb.settings.api_keys:
            raise HTTPException(
                401, "generated answers need an API key: send 'Authorization: Bearer <key>'"
            )
        caller = ANONYMOUS
    if not body.stream:
        grounded = kb.generate(
            body.question, model=body.model, caller=caller, mode=body.mode, lang=body.lang
        )
        return AskResponse.of(grounded.answer, grounded)
    events = kb.generate_stream(
        body.question, model=body.model, caller=caller, mode=body.mode, lang=body.lang
    )
    first = next(events)  # refusals (policy, budget) raise here, as HTTP errors
    return StreamingResponse(
        _sse(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(first: AnswerEvent, rest: Iterator[AnswerEvent]) -> Iterator[str]:
    """The events as ``text/event-stream``; a failure mid-stream becomes an ``error`` event.

    When the client goes away, closing this generator closes the answer's, which frees
    the local model (one call at a time) and audits the call as cancelled.
    """
    try:
        yield _event(first)
        for event in rest:
            yield _event(event)
    except AlloError as error:
        yield _frame("error", {"type": type(error).__name__, "message": str(error)})
    finally:
        close = getattr(rest, "close", None)  # a generator: stop the model's work
        if close is not None:
            close()


def _event(event: AnswerEvent) -> str:
    if isinstance(event, SentenceEvent):
        return _frame(
            "sentence",
            {
                "text": event.text,
                "separator": event.separator,
                "supported": event.supported,
                "citations": [CitationOut.of(c).model_dump() for c in event.citations],
            },
        )
    if isinstance(event, ReplaceEvent):
        return _frame(
            "replace",
            {
                "reason": str(event.reason) if event.reason else None,
                "answer": AskResponse.of(event.answer).model_dump(),
            },
        )
    assert isinstance(event, FinalEvent)
    result = event.result
    return _frame("answer", AskResponse.of(result.answer, result).model_dump())


def _frame(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
