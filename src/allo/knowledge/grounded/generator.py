"""Generated answers that stay grounded: a model writes, every sentence is checked.

``GroundedAnswerer`` answers a question from retrieved passages through the model
gateway. It abstains exactly when the extractive answer would (low confidence: the
"I don't know" message, no model call). Otherwise the model gets the passages quoted as
data (``prompt.py``) and its answer is checked sentence by sentence (``support.py``):

- a supported sentence is kept, its citations re-pointed to the passages that support
  it and renumbered in order of first citation ([1], [2]... as shown to the user);
- an unsupported one is dropped (``unsupported="drop"``, the default) or kept with a
  visible "(non vérifié)" mark (``"mark"``);
- when too little survives (no supported sentence, or more than
  ``max_removed_share`` of the sentences unsupported) the extractive answer replaces it.

Streaming yields ``SentenceEvent`` as each sentence is complete and checked, maybe a
``ReplaceEvent`` (discard what was shown, show this answer instead), then exactly one
``FinalEvent`` carrying the whole result. Showing ``separator + text`` of each sentence
event, reset by a replace event, gives exactly the final answer's text. The extractive
answer it falls back to is taken from the passages without their sentences addressed to
the assistant (``data_only``), so that it never quotes an injected instruction.

Errors: ``PolicyRefusal``, ``BudgetExceededError`` and ``RateLimitedError`` reach the
caller; ``ModelError`` (every allowed model failed) gives the extractive answer marked
with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from allo.domain import Answer, Citation, Passage
from allo.errors import ModelError
from allo.gateway.call import Caller, DocumentUse, GatewayCall, GatewayResult, ModelGateway
from allo.gateway.config import GatewaySettings, ModelSpec, ProviderKind
from allo.gateway.protocol import ChatRequest, Grounding, TextDelta, Usage
from allo.knowledge.answer import ExtractiveAnswerer
from allo.knowledge.grounded.prompt import (
    STOP,
    GroundedPrompt,
    TokenCounter,
    build_prompt,
    estimate_tokens,
    heading_of,
    language_of,
    without_directives,
)
from allo.knowledge.grounded.support import (
    Evidence,
    Piece,
    SentenceCheck,
    SentenceKind,
    SupportChecker,
    scan_sentences,
    strip_markers,
)

# Strings of this module shown to customers (kept here, French first; see messages.py).
_TEXTS = {
    "unverified": {"fr": "(non vérifié)", "en": "(unverified)"},
}

DEFAULT_CONTEXT = 4096
DEFAULT_MAX_TOKENS = 256


def _text(key: str, lang: str) -> str:
    return _TEXTS[key].get(language_of(lang), _TEXTS[key]["fr"])


class FallbackReason(StrEnum):
    """Why the extractive answer was shown instead of the model's."""

    MODEL_ERROR = "model_error"  # every allowed model failed
    UNSUPPORTED = "unsupported"  # too much of the model's answer failed the support check
    DECLINED = "declined"  # the model said the passages do not answer
    EMPTY = "empty"  # the model wrote nothing that asserts anything
    GATEWAY_EXTRACTIVE = "gateway_extractive"  # the gateway served the extractive model


class UnsupportedPolicy(StrEnum):
    """What happens to a sentence the passages do not support."""

    DROP = "drop"  # not shown
    MARK = "mark"  # shown, followed by "(non vérifié)"


@dataclass(frozen=True, slots=True)
class GroundedAnswer:
    """An answer and how it was made.

    ``answer`` is what to show (its ``text``, ``citations`` numbered from 1 in order of
    first citation, ``abstained``, ``confidence`` of the retrieval). ``generated`` is
    true when a model wrote the text; otherwise it is the extractive answer or the
    abstention, and ``fallback`` says why when a model was asked. ``model`` is the
    declared model that served the call, ``data_class`` the class the gateway gave the
    data; ``removed_sentences`` counts the model's sentences that failed the check
    (dropped or marked), ``checks`` has every verdict and ``raw_text`` the model's own
    text before the check.
    """

    answer: Answer
    generated: bool
    model: str | None = None
    data_class: str | None = None
    fallback: FallbackReason | None = None
    fallback_detail: str = ""
    kept_sentences: int = 0
    removed_sentences: int = 0
    invalid_citations: int = 0
    repointed_citations: int = 0
    checks: tuple[SentenceCheck, ...] = ()
    passages_given: int = 0
    raw_text: str = ""
    usage: Usage | None = None
    audit_id: str = ""

    @property
    def text(self) -> str:
        """The text to show."""
        return self.answer.text


@dataclass(frozen=True, slots=True)
class SentenceEvent:
    """A checked sentence to show after ``separator`` (``""``, ``" "`` or ``"\\n"``);
    ``citations`` are the sources it cites for the first time."""

    text: str
    separator: str
    citations: tuple[Citation, ...] = ()
    supported: bool = True


@dataclass(frozen=True, slots=True)
class ReplaceEvent:
    """Discard the sentences shown so far and show ``answer`` instead (the extractive
    answer or the abstention); ``reason`` is ``None`` for an abstention."""

    answer: Answer
    reason: FallbackReason | None


@dataclass(frozen=True, slots=True)
class FinalEvent:
    """The last event of a stream: the whole result."""

    result: GroundedAnswer


AnswerEvent = SentenceEvent | ReplaceEvent | FinalEvent


def data_only(passages: Sequence[Passage]) -> list[Passage]:
    """The passages without their sentences addressed to the assistant ("ignore the
    previous instructions..."), scores unchanged; a passage made only of such sentences
    is left out, untouched passages are the same objects.

    The extractive answer a generated one falls back to is taken from these, so that it
    never quotes an injected instruction.
    """
    cleaned = []
    for passage in passages:
        text, removed = without_directives(passage.chunk.text)
        if removed:
            if not text.strip():
                continue
            chunk = dataclasses.replace(passage.chunk, text=text)
            passage = dataclasses.replace(passage, chunk=chunk)
        cleaned.append(passage)
    return cleaned


def answer_from_data(
    extractive: ExtractiveAnswerer,
    question: str,
    lang: str,
    passages: Sequence[Passage],
    mode: str,
    decision: Answer,
) -> Answer:
    """The extractive answer, never quoting a sentence addressed to the assistant.

    ``decision`` is the extractive answer from the passages as retrieved: it decides
    whether to abstain, so that abstention and retrieval are unchanged. When some passage
    holds sentences addressed to the assistant ("ignore the previous instructions..."),
    the answer is taken again from the ``data_only`` passages (the abstention when
    nothing is left), keeping the passages as retrieved for the sources shown.
    """
    if decision.abstained:
        return decision
    cleaned = data_only(passages)
    unchanged = len(cleaned) == len(passages) and all(
        a is b for a, b in zip(cleaned, passages, strict=True)
    )
    if unchanged:
        return decision
    answer = extractive.answer(question, lang, cleaned, mode)
    return dataclasses.replace(answer, passages=tuple(passages))


def citation_for(passage: Passage, number: int) -> Citation:
    """The citation ``[number]`` of a passage (same excerpt rules as extractive answers)."""
    excerpt = " ".join(passage.chunk.text.split())
    return Citation(
        number=number,
        document_id=passage.document.id,
        chunk_id=passage.chunk.id,
        title=passage.document.title,
        source=passage.document.source,
        heading_path=passage.chunk.heading_path,
        excerpt=excerpt[:280] + ("…" if len(excerpt) > 280 else ""),
        score=passage.score,
        url=passage.document.url,
    )


@dataclass(slots=True)
class _Assembly:
    """The answer being built from checked sentences, citations renumbered as they come."""

    checker: SupportChecker
    evidence: Evidence
    prompt: GroundedPrompt
    policy: UnsupportedPolicy
    lang: str
    numbering: dict[int, int] = field(default_factory=dict)  # prompt number -> shown number
    citations: list[Citation] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    checks: list[SentenceCheck] = field(default_factory=list)
    kept: int = 0
    removed: int = 0
    declined: int = 0
    invalid: int = 0
    repointed: int = 0

    def add(self, piece: Piece) -> SentenceEvent | None:
        check = self.checker.check(piece.text, self.evidence)
        self.checks.append(check)
        self.invalid += len(check.invalid)
        body = strip_markers(piece.text)
        fresh: list[Citation] = []
        if check.kind is SentenceKind.DECLINED:
            self.declined += 1
            return None
        if check.kind is SentenceKind.NEUTRAL:
            if not any(char.isalnum() for char in body):
                return None
            text = body
        elif not check.supported:
            self.removed += 1
            if self.policy is UnsupportedPolicy.DROP:
                return None
            text = f"{body} {_text('unverified', self.lang)}"
        else:
            self.kept += 1
            self.repointed += int(check.repointed)
            markers = []
            for number in check.citations:
                if number not in self.numbering:
                    shown = len(self.citations) + 1
                    self.numbering[number] = shown
                    citation = citation_for(self.prompt.passages[number - 1], shown)
                    self.citations.append(citation)
                    fresh.append(citation)
                markers.append(f"[{self.numbering[number]}]")
            text = f"{body} {''.join(markers)}"
        separator = "" if not self.parts else ("\n" if piece.newline_before else " ")
        self.parts.append(separator + text)
        return SentenceEvent(text, separator, tuple(fresh), check.supported)

    def verdict(self, max_removed_share: float) -> FallbackReason | None:
        """Why the extractive answer must replace this one, or ``None`` if it stands."""
        claims = self.kept + self.removed
        if self.kept and self.removed <= max_removed_share * claims:
            return None
        if self.removed:
            return FallbackReason.UNSUPPORTED
        return FallbackReason.DECLINED if self.declined else FallbackReason.EMPTY


class GroundedAnswerer:
    """Answers from passages with a model through the gateway, checked sentence by
    sentence; cheap to build (no model is loaded here)."""

    def __init__(
        self,
        gateway: ModelGateway,
        extractive: ExtractiveAnswerer,
        *,
        models: GatewaySettings | None = None,
        checker: SupportChecker | None = None,
        unsupported: UnsupportedPolicy | str = UnsupportedPolicy.DROP,
        max_removed_share: float = 0.5,
        max_passages: int = 3,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        count_tokens: TokenCounter = estimate_tokens,
    ) -> None:
        self.gateway = gateway
        self.extractive = extractive
        self.models = models
        self.checker = checker or SupportChecker()
        self.unsupported = UnsupportedPolicy(unsupported)
        self.max_removed_share = max_removed_share
        self.max_passages = max_passages
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.count_tokens = count_tokens

    # -- public ----------------------------------------------------------------------

    def answer(
        self,
        question: str,
        lang: str,
        passages: Sequence[Passage],
        mode: str,
        *,
        model: str | None = None,
        caller: Caller | None = None,
    ) -> GroundedAnswer:
        """The whole answer at once (the gateway's ``complete``)."""
        final: GroundedAnswer | None = None
        for event in self._run(question, lang, passages, mode, model, caller or Caller(), False):
            if isinstance(event, FinalEvent):
                final = event.result
        assert final is not None
        return final

    def stream(
        self,
        question: str,
        lang: str,
        passages: Sequence[Passage],
        mode: str,
        *,
        model: str | None = None,
        caller: Caller | None = None,
    ) -> Iterator[AnswerEvent]:
        """Checked sentences as the model writes them, then the final result."""
        return self._run(question, lang, passages, mode, model, caller or Caller(), True)

    def spec_of(self, model: str | None) -> ModelSpec | None:
        """The declared model a call for ``model`` asks for, when the settings are known."""
        if self.models is None:
            return None
        return self.models.spec(model or self.models.default_model)

    def prompt_for(
        self, question: str, lang: str, passages: Sequence[Passage], model: str | None = None
    ) -> GroundedPrompt:
        """The prompt a call for ``model`` sends (trimmed to that model's context)."""
        spec = self.spec_of(model)
        return build_prompt(
            question,
            lang,
            passages,
            context_length=spec.context_length if spec else DEFAULT_CONTEXT,
            max_tokens=self._max_tokens(spec),
            max_passages=self.max_passages,
            count_tokens=self.count_tokens,
        )

    # -- the run ---------------------------------------------------------------------

    def _max_tokens(self, spec: ModelSpec | None) -> int:
        return min(self.max_tokens, spec.max_output_tokens) if spec else self.max_tokens

    def _call(
        self, prompt: GroundedPrompt, question: str, lang: str, model: str | None, caller: Caller
    ) -> GatewayCall:
        documents: dict[str, DocumentUse] = {}
        for passage in prompt.passages:
            documents.setdefault(
                passage.document.id, DocumentUse(passage.document.id, tuple(passage.document.tags))
            )
        request = ChatRequest(
            messages=prompt.messages,
            max_tokens=self._max_tokens(self.spec_of(model)),
            temperature=self.temperature,
            stop=STOP,
            grounding=Grounding(question, lang, prompt.passages),
        )
        return GatewayCall(
            request=request, caller=caller, model=model, documents=tuple(documents.values())
        )

    def _run(
        self,
        question: str,
        lang: str,
        passages: Sequence[Passage],
        mode: str,
        model: str | None,
        caller: Caller,
        streaming: bool,
    ) -> Iterator[AnswerEvent]:
        decision = self.extractive.answer(question, lang, passages, mode)
        extractive = answer_from_data(self.extractive, question, lang, passages, mode, decision)
        spec = self.spec_of(model)
        if decision.abstained or (spec is not None and spec.provider is ProviderKind.EXTRACTIVE):
            yield ReplaceEvent(extractive, None)
            yield FinalEvent(
                GroundedAnswer(
                    extractive,
                    False,
                    model=spec.name if spec and not decision.abstained else None,
                )
            )
            return
        prompt = self.prompt_for(question, lang, passages, model)
        call = self._call(prompt, question, lang, model, caller)
        headings = [heading_of(passage) for passage in prompt.passages]
        assembly = _Assembly(
            self.checker,
            self.checker.evidence(prompt.texts, headings, question),
            prompt,
            self.unsupported,
            lang,
        )
        result: GatewayResult | None = None
        raw: list[str] = []
        buffer, newline = "", False
        source: Iterator[TextDelta | GatewayResult] = iter(())
        try:
            source = self._source(call, streaming)
            for item in source:
                if isinstance(item, GatewayResult):
                    result = item
                    continue
                raw.append(item.text)
                buffer += item.text
                pieces, consumed, newline = scan_sentences(buffer, final=False, newline=newline)
                buffer = buffer[consumed:]
                for piece in pieces:
                    event = assembly.add(piece)
                    if event is not None:
                        yield event
        except ModelError as exc:
            yield from self._fallback(
                extractive, FallbackReason.MODEL_ERROR, str(exc), assembly, "".join(raw), None
            )
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        pieces, _, _ = scan_sentences(buffer, final=True, newline=newline)
        for piece in pieces:
            event = assembly.add(piece)
            if event is not None:
                yield event
        raw_text = result.completion.text if result is not None else "".join(raw)
        if result is None:
            detail = "the gateway's stream ended without a result"
            yield from self._fallback(
                extractive, FallbackReason.MODEL_ERROR, detail, assembly, raw_text, None
            )
            return
        if result.model.provider is ProviderKind.EXTRACTIVE:
            yield from self._fallback(
                extractive, FallbackReason.GATEWAY_EXTRACTIVE, "", assembly, raw_text, result
            )
            return
        reason = assembly.verdict(self.max_removed_share)
        if reason is not None:
            yield from self._fallback(extractive, reason, "", assembly, raw_text, result)
            return
        answer = Answer(
            question,
            "".join(assembly.parts),
            lang,
            tuple(assembly.citations),
            False,
            decision.confidence,
            mode,
            tuple(passages),
        )
        yield FinalEvent(self._result(answer, True, None, "", assembly, raw_text, result))

    def _source(self, call: GatewayCall, streaming: bool) -> Iterator[TextDelta | GatewayResult]:
        if streaming:
            return self.gateway.stream(call)
        result = self.gateway.complete(call)
        return iter((TextDelta(result.completion.text), result))

    def _fallback(
        self,
        extractive: Answer,
        reason: FallbackReason,
        detail: str,
        assembly: _Assembly,
        raw_text: str,
        result: GatewayResult | None,
    ) -> Iterable[AnswerEvent]:
        yield ReplaceEvent(extractive, reason)
        yield FinalEvent(
            self._result(extractive, False, reason, detail, assembly, raw_text, result)
        )

    @staticmethod
    def _result(
        answer: Answer,
        generated: bool,
        reason: FallbackReason | None,
        detail: str,
        assembly: _Assembly,
        raw_text: str,
        result: GatewayResult | None,
    ) -> GroundedAnswer:
        return GroundedAnswer(
            answer=answer,
            generated=generated,
            model=result.model.name if result is not None else None,
            data_class=result.data_class.value if result is not None else None,
            fallback=reason,
            fallback_detail=detail,
            kept_sentences=assembly.kept,
            removed_sentences=assembly.removed,
            invalid_citations=assembly.invalid,
            repointed_citations=assembly.repointed,
            checks=tuple(assembly.checks),
            passages_given=len(assembly.prompt.passages),
            raw_text=raw_text,
            usage=result.completion.usage if result is not None else None,
            audit_id=result.audit_id if result is not None else "",
        )
