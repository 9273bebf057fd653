"""Generated answers grounded in the passages: prompt, per-sentence support check, stream.

The public surface::

    GroundedAnswerer(gateway, extractive, models=..., checker=...)
        .answer(question, lang, passages, mode, *, model, caller) -> GroundedAnswer
        .stream(question, lang, passages, mode, *, model, caller) -> Iterator[AnswerEvent]
    SupportChecker().check_text(answer_text, passage_texts) -> list[SentenceCheck]
    build_prompt(question, lang, passages, context_length=..., max_tokens=...) -> GroundedPrompt
"""

from allo.knowledge.grounded.generator import (
    AnswerEvent,
    FallbackReason,
    FinalEvent,
    GroundedAnswer,
    GroundedAnswerer,
    ReplaceEvent,
    SentenceEvent,
    UnsupportedPolicy,
)
from allo.knowledge.grounded.prompt import GroundedPrompt, build_prompt, neutralise, system_prompt
from allo.knowledge.grounded.support import (
    SentenceCheck,
    SentenceKind,
    SupportChecker,
    split_sentences,
)

__all__ = [
    "AnswerEvent",
    "FallbackReason",
    "FinalEvent",
    "GroundedAnswer",
    "GroundedAnswerer",
    "GroundedPrompt",
    "ReplaceEvent",
    "SentenceCheck",
    "SentenceEvent",
    "SentenceKind",
    "SupportChecker",
    "UnsupportedPolicy",
    "build_prompt",
    "neutralise",
    "split_sentences",
    "system_prompt",
]
