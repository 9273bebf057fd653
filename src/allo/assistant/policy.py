"""The dialogue policy: what the assistant does with one customer message.

``DialoguePolicy.respond(state, message)`` is a pure decision over a serialisable
``DialogueState`` (stored with the conversation) that returns the new state and typed
messages to show. In order:

1. a button payload ``advisor`` (offered after an abstention), an explicit request for a
   human (intent ``conseiller`` or words such as "conseiller", "humain") or strong
   frustration (a small French lexicon, capitals, "!!!") -> **handoff**;
2. a tutorial is running: a button payload or an answer goes to it, unless the message is
   a clear topic change or correction (another confident intent that triggers another
   tutorial and is no valid answer to the pending question, or an in-scope intent after
   "en fait", "plutôt"..., e.g. "en fait c'est pour ma facture") -> the other tutorial
   starts; a digression that is no valid answer (thanks, or a question the knowledge
   base answers; "au fait..." announces one even when it names another topic) gets its
   reply, then the pending question again, the tutorial unchanged;
3. an intent that triggers a tutorial -> the tutorial starts;
4. greetings and thanks -> a short reply;
5. anything else -> a cited answer from the knowledge base; an abstention offers an
   advisor, and a second failure in a row (abstention, tutorial ending unresolved) hands
   over. A handoff requested by a tutorial hands over at once.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import date
from typing import Any, Literal, Protocol

from allo.assistant.flows.engine import TutorialEngine
from allo.assistant.flows.state import (
    ButtonsOutput,
    EndOutput,
    HandoffOutput,
    ImageOutput,
    Output,
    TextOutput,
    TutorialState,
)
from allo.assistant.nlu.understanding import Understanding
from allo.domain import Answer
from allo.errors import InvalidInputError
from allo.knowledge.index.embedding import QueryVector

#: the payload of the "talk to an advisor" button
ADVISOR_PAYLOAD = "advisor"
#: the intent that asks for a human
ADVISOR_INTENT = "conseiller"
#: failures in a row (abstentions, unresolved tutorials) before a handoff
MAX_FAILURES = 2

_HUMAN = re.compile(
    r"\b(conseill[eè]re?s?|humains?|agent|quelqu'?un de reel|vraie? personne|"
    r"(parler|passer) (a|avec) (un|une) operat(eur|rice)|advisor|human|real person)\b"
)
_CORRECTION = re.compile(
    r"\b(en fait|finalement|plutot|je voulais dire|je me suis trompe|non c'?est pour|"
    r"c'?est pour (ma|mon|la|le|les)|actually|i meant)\b"
)
_STRONG = [
    re.compile(p)
    for p in (
        r"\binadmissible\b",
        r"\binacceptable\b",
        r"\bscandal(e|eux|euse)\b",
        r"\bhonteu(x|se)\b",
        r"\bn'?importe quoi\b",
        r"\bras le bol\b",
        r"\bj'?en ai marre\b",
        r"\bca fait (\d+|deux|trois|quatre|cinq|dix) fois\b",
        r"\bunacceptable\b",
        r"\bridiculous\b",
    )
]
_MILD = [
    re.compile(p)
    for p in (r"\bnul(le)?s?\b", r"\bmarre\b", r"\bagace\b", r"\bénervé\b", r"\benerve\b")
]
_GREETINGS = {
    "salutation": {
        "fr": "Bonjour ! Décrivez-moi votre besoin ou votre problème en quelques mots.",
        "en": "Hello! Tell me in a few words what you need or what is wrong.",
    },
    "remerciement": {
        "fr": "Avec plaisir ! Puis-je vous aider pour autre chose ?",
        "en": "You are welcome! Can I help you with anything else?",
    },
}
_HANDOFF_TEXT = {
    "fr": "Je vous mets en relation avec un conseiller Ondea, qui aura le résumé de nos échanges.",
    "en": "I am transferring you to an Ondea advisor, who will see a summary of our exchange.",
}
_SWITCH_TEXT = {
    "fr": "D'accord, parlons plutôt de cela.",
    "en": "All right, let us talk about that instead.",
}
_RESUME_TEXT = {
    "fr": "Reprenons le guide là où nous en étions :",
    "en": "Let us go back to the guide where we left it:",
}
#: words that announce a question aside ("by the way"), accents removed
_ASIDE = re.compile(
    r"\b(au fait|au passage|par ailleurs|petite question|autre question|une question|"
    r"by the way|btw|quick question)\b"
)
#: a question rather than an answer to the pending step (accents removed, lower case)
_QUESTION = re.compile(
    r"\?|^(comment|pourquoi|quel(le)?s?|ou|combien|quand|est-ce|qu'?est-ce|puis-je|"
    r"peut-on|faut-il|how|what|why|where|when|which|can|do|does|is|are)\b"
)
_ADVISOR_LABEL = {"fr": "Parler à un conseiller", "en": "Talk to an advisor"}


# -- what the policy reads ---------------------------------------------------------------


class Understander(Protocol):
    """Language, intent and entities of a message (``MessageUnderstanding`` is one)."""

    def understand(self, text: str, today: date | None = None) -> Understanding: ...


class Answerer(Protocol):
    """Cited answers (``KnowledgeBase`` is one)."""

    def ask(
        self,
        question: str,
        mode: Any = None,
        lang: str | None = None,
        *,
        query_vector: QueryVector | None = None,
    ) -> Answer: ...


@dataclass(frozen=True)
class CustomerMessage:
    """Typed text, or the payload of a quick-reply button (exactly one of the two)."""

    text: str | None = None
    payload: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.payload is None):
            raise InvalidInputError("send either a text or a button payload, not both or none")

    @property
    def shown(self) -> str:
        """What the conversation shows for it."""
        return self.text if self.text is not None else str(self.payload)


# -- what the policy says ----------------------------------------------------------------


@dataclass(frozen=True)
class CitationRef:
    number: int
    title: str
    source: str
    excerpt: str
    url: str | None = None


@dataclass(frozen=True)
class TextMessage:
    text: str
    citations: tuple[CitationRef, ...] = ()
    step_id: str | None = None
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class ButtonChoice:
    payload: str
    label: str


@dataclass(frozen=True)
class ButtonsMessage:
    buttons: tuple[ButtonChoice, ...]
    free_text: bool = True
    step_id: str | None = None
    kind: Literal["buttons"] = "buttons"


@dataclass(frozen=True)
class ImageMessage:
    path: str
    alt: str
    kind: Literal["image"] = "image"


@dataclass(frozen=True)
class HandoffSummary:
    """What the advisor reads first."""

    wants: str
    reason: str
    intent: str | None
    tutorial_id: str | None
    steps_done: tuple[str, ...]
    entities: dict[str, str]
    sentiment: Literal["neutre", "agacé", "très mécontent"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps_done"] = list(self.steps_done)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandoffSummary:
        return cls(
            wants=str(data.get("wants", "")),
            reason=str(data.get("reason", "")),
            intent=data.get("intent"),
            tutorial_id=data.get("tutorial_id"),
            steps_done=tuple(data.get("steps_done") or ()),
            entities=dict(data.get("entities") or {}),
            sentiment=data.get("sentiment", "neutre"),
        )


@dataclass(frozen=True)
class HandoffMessage:
    summary: HandoffSummary
    kind: Literal["handoff"] = "handoff"


AssistantMessage = TextMessage | ButtonsMessage | ImageMessage | HandoffMessage


def message_dict(item: AssistantMessage) -> dict[str, Any]:
    """A JSON-ready copy of a message (what the API returns and the store keeps)."""
    if isinstance(item, HandoffMessage):
        return {"kind": "handoff", "summary": item.summary.to_dict()}
    return asdict(item)


# -- state ---------------------------------------------------------------------------------


@dataclass
class DialogueState:
    """What the policy remembers between messages (JSON via ``to_dict``/``from_dict``)."""

    tutorial: dict[str, Any] | None = None
    failures: int = 0
    irritation: int = 0
    first_request: str | None = None
    last_intent: str | None = None
    entities: dict[str, str] = field(default_factory=dict)
    steps_done: list[str] = field(default_factory=list)
    language: str = "fr"
    handed_off: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain data, the same as ``dataclasses.asdict`` at a fraction
        of its cost (it runs twice per message)."""
        return {name: _plain_copy(getattr(self, name)) for name in _STATE_FIELDS}

    @classmethod
    def from_dict(cls, data: Any) -> DialogueState:
        if not isinstance(data, dict):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError:
            return cls()


_STATE_FIELDS = tuple(DialogueState.__dataclass_fields__)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_copy(value: Any) -> Any:
    """``value`` deep-copied as ``asdict`` copies a field holding JSON-like data: dicts,
    lists and tuples rebuilt, scalars shared; anything else through ``asdict`` (a
    dataclass) or ``copy.deepcopy``."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {_plain_copy(k): _plain_copy(v) for k, v in value.items()}
    if kind is list:
        return [_plain_copy(v) for v in value]
    if kind is tuple:
        return tuple(_plain_copy(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return copy.deepcopy(value)


#: what the policy did with a message (``Decision.action``)
Action = Literal[
    "tutorial_start",
    "tutorial_step",
    "tutorial_switch",
    "answer",
    "abstain",
    "smalltalk",
    "handoff",
]


@dataclass(frozen=True)
class Decision:
    """The policy's answer to one message: new state, messages and what it did."""

    state: DialogueState
    messages: list[AssistantMessage]
    action: Action
    intent: str | None = None
    language: str = "fr"
    #: the tutorial this message ran in (started, continued or switched to), if any
    tutorial_id: str | None = None
    #: where that tutorial stands: the pending question, or its last step if it ended
    step_id: str | None = None
    #: whether the knowledge base had no answer (offered an advisor or handed over)
    abstained: bool = False
    #: how the message was understood (``None`` for a button payload)
    understanding: Understanding | None = None

    @property
    def handoff(self) -> HandoffSummary | None:
        return next((m.summary for m in self.messages if isinstance(m, HandoffMessage)), None)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def frustration(text: str) -> int:
    """0 (none), 1 (irritated) or 2 (strong), from words, capitals and "!!!"."""
    plain = _plain(text)
    points = 2 * sum(bool(p.search(plain)) for p in _STRONG)
    points += sum(bool(p.search(plain)) for p in _MILD)
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.7:
        points += 1
    if "!!!" in text or "?!?" in text:
        points += 1
    return min(points, 2)


def asks_for_human(text: str) -> bool:
    """Whether the words ask for a person."""
    return bool(_HUMAN.search(_plain(text)))


class DialoguePolicy:
    """Decides, for one message, between tutorial, answer and handoff."""

    def __init__(
        self,
        understander: Understander,
        tutorials: TutorialEngine,
        knowledge: Answerer,
        *,
        switch_min_score: float = 0.0,
        max_failures: int = MAX_FAILURES,
    ) -> None:
        self.understander = understander
        self.tutorials = tutorials
        self.knowledge = knowledge
        self.switch_min_score = switch_min_score
        self.max_failures = max_failures

    def respond(
        self, state: DialogueState, message: CustomerMessage, today: date | None = None
    ) -> Decision:
        state = DialogueState.from_dict(state.to_dict())  # never mutate the caller's copy
        if message.payload is not None:
            return self._payload(state, message.payload)
        text = message.text or ""
        if not text.strip():
            raise InvalidInputError("the message is empty; type a question or choose a button")
        understood = self.understander.understand(text, today)
        return replace(self._route(state, text, understood), understanding=understood)

    def _route(self, state: DialogueState, text: str, understood: Understanding) -> Decision:
        """Steps 1 to 5 of the module docstring for a typed message."""
        lang = "en" if understood.language == "en" else "fr"
        state.language = lang
        for entity in understood.entities:
            state.entities[entity.type] = entity.value
        confident = understood.intent != "oos" and understood.score >= self.switch_min_score
        if state.first_request is None and understood.intent not in _GREETINGS:
            state.first_request = text
        if confident and understood.intent not in (ADVISOR_INTENT, *_GREETINGS):
            state.last_intent = understood.intent  # what the customer wants, for the advisor
        # 1. a human asked for, or strong frustration
        anger = frustration(text)
        state.irritation += anger
        if (confident and understood.intent == ADVISOR_INTENT) or asks_for_human(text):
            return self._handoff(state, "demande explicite d'un conseiller", understood.intent)
        if anger >= 2 or state.irritation >= 2:
            return self._handoff(state, "client très mécontent", understood.intent)
        # 2. a running tutorial
        tutorial = self.tutorials.for_intent(understood.intent) if understood.intent else None
        running = TutorialState.from_dict(state.tutorial) if state.tutorial else None
        if running is not None:
            other = tutorial is not None and tutorial.id != running.tutorial_id
            corrected = bool(_CORRECTION.search(_plain(text)))
            in_scope = understood.intent != "oos"
            accepted = self.tutorials.accepts(running, text, understood.entities)
            # "au fait, ...?" announces a question aside, not a new topic
            aside_first = not accepted and not corrected and bool(_ASIDE.search(_plain(text)))
            if aside_first:
                aside = self._digression(state, running, text, understood, confident, lang)
                if aside is not None:
                    return aside
            if (
                other
                and tutorial is not None
                and ((confident and not accepted) or (corrected and in_scope))
            ):
                return self._start(state, tutorial.id, understood, switched=True)
            if not accepted and not aside_first:
                aside = self._digression(state, running, text, understood, confident, lang)
                if aside is not None:
                    return aside
            return self._advance(state, running, text, understood)
        # 3. a tutorial for the intent
        if tutorial is not None and understood.intent != "oos":
            return self._start(state, tutorial.id, understood, switched=False)
        # 4. small talk
        if confident and understood.intent in _GREETINGS:
            reply = _GREETINGS[understood.intent][lang]
            return Decision(state, [TextMessage(reply)], "smalltalk", understood.intent, lang)
        # 5. the knowledge base
        return self._answer(state, text, understood.intent, lang, understood.query_vector)

    # -- the branches ------------------------------------------------------------------

    def _payload(self, state: DialogueState, payload: str) -> Decision:
        if payload == ADVISOR_PAYLOAD:
            return self._handoff(state, "demande explicite d'un conseiller", None)
        if state.tutorial:
            running = TutorialState.from_dict(state.tutorial)
            return self._advance(state, running, payload, None)
        raise InvalidInputError(
            f"button {payload!r} belongs to no running tutorial; type your question instead"
        )

    def _digression(
        self,
        state: DialogueState,
        running: TutorialState,
        text: str,
        understood: Understanding,
        confident: bool,
        lang: str,
    ) -> Decision | None:
        """Thanks or a question aside mid-tutorial: a reply, then the pending question again.

        ``None`` when the message is neither (or the knowledge base has no answer): the
        tutorial then handles it as an answer it did not understand.
        """
        intent = understood.intent
        if confident and intent in _GREETINGS:
            lead: list[AssistantMessage] = [TextMessage(_GREETINGS[intent][lang])]
            action: Literal["smalltalk", "answer"] = "smalltalk"
        elif (confident and self.tutorials.for_intent(intent) is None) or _QUESTION.search(
            _plain(text)
        ):
            answer = self.knowledge.ask(text, lang=lang, query_vector=understood.query_vector)
            if answer.abstained:
                return None
            citations = tuple(
                CitationRef(c.number, c.title, c.source, c.excerpt, c.url) for c in answer.citations
            )
            lead, action = [TextMessage(answer.text, citations)], "answer"
            state.failures = 0
        else:
            return None
        again = [m for m in map(_convert, self.tutorials.prompt(running)) if m is not None]
        messages = [*lead, TextMessage(_RESUME_TEXT[lang]), *again]
        return Decision(state, messages, action, intent, lang, running.tutorial_id, running.step_id)

    def _start(
        self, state: DialogueState, tutorial_id: str, understood: Understanding, *, switched: bool
    ) -> Decision:
        tutorial_state, outputs = self.tutorials.start(
            tutorial_id, understood.entities, understood.language
        )
        lead: list[AssistantMessage] = (
            [TextMessage(_SWITCH_TEXT[state.language])] if switched else []
        )
        action: Literal["tutorial_switch", "tutorial_start"] = (
            "tutorial_switch" if switched else "tutorial_start"
        )
        return self._after_tutorial(state, tutorial_state, outputs, action, understood.intent, lead)

    def _advance(
        self,
        state: DialogueState,
        running: TutorialState,
        said: str,
        understood: Understanding | None,
    ) -> Decision:
        entities = understood.entities if understood is not None else ()
        tutorial_state, outputs = self.tutorials.advance(running, said, entities)
        intent = understood.intent if understood is not None else None
        return self._after_tutorial(state, tutorial_state, outputs, "tutorial_step", intent, [])

    def _after_tutorial(
        self,
        state: DialogueState,
        tutorial_state: TutorialState,
        outputs: Sequence[Output],
        action: Literal["tutorial_start", "tutorial_step", "tutorial_switch"],
        intent: str | None,
        lead: list[AssistantMessage],
    ) -> Decision:
        messages = lead + [m for m in map(_convert, outputs) if m is not None]
        for name, value in tutorial_state.slots.items():
            if not name.startswith("_") and isinstance(value, str | int | float):
                state.entities.setdefault(name, str(value))
        state.steps_done = [
            *state.steps_done,
            *(
                f"{tutorial_state.tutorial_id}:{s}"
                for s in tutorial_state.history
                if f"{tutorial_state.tutorial_id}:{s}" not in state.steps_done
            ),
        ]
        state.tutorial = None if tutorial_state.finished else tutorial_state.to_dict()
        handoff = next((o for o in outputs if isinstance(o, HandoffOutput)), None)
        tutorial_id, step_id = tutorial_state.tutorial_id, _position(tutorial_state)
        if handoff is not None:
            summary = self._summary(state, handoff.reason, intent, handoff.tutorial_id)
            state.handed_off = True
            messages = [m for m in messages if not isinstance(m, HandoffMessage)]
            messages.append(HandoffMessage(summary))
            step_id = handoff.step_id or step_id
            return Decision(
                state, messages, "handoff", intent, state.language, tutorial_id, step_id
            )
        end = next((o for o in outputs if isinstance(o, EndOutput)), None)
        if end is not None and not end.resolved:
            state.failures += 1
            if state.failures >= self.max_failures:
                reason = "problème non résolu après plusieurs essais"
                decision = self._handoff(state, reason, intent, messages, tutorial_id)
                return replace(decision, tutorial_id=tutorial_id, step_id=step_id)
        elif end is not None:
            state.failures = 0
        return Decision(state, messages, action, intent, state.language, tutorial_id, step_id)

    def _answer(
        self,
        state: DialogueState,
        text: str,
        intent: str | None,
        lang: str,
        query_vector: QueryVector | None = None,
    ) -> Decision:
        """Step 5: the knowledge base's answer; ``query_vector`` spares it embedding ``text``."""
        answer = self.knowledge.ask(text, lang=lang, query_vector=query_vector)
        if answer.abstained:
            state.failures += 1
            if state.failures >= self.max_failures:
                decision = self._handoff(state, "questions restées sans réponse", intent)
                return replace(decision, abstained=True)
            offer = ButtonsMessage((ButtonChoice(ADVISOR_PAYLOAD, _ADVISOR_LABEL[lang]),))
            messages: list[AssistantMessage] = [TextMessage(answer.text), offer]
            return Decision(state, messages, "abstain", intent, lang, abstained=True)
        state.failures = 0
        citations = tuple(
            CitationRef(c.number, c.title, c.source, c.excerpt, c.url) for c in answer.citations
        )
        return Decision(state, [TextMessage(answer.text, citations)], "answer", intent, lang)

    def _handoff(
        self,
        state: DialogueState,
        reason: str,
        intent: str | None,
        lead: Sequence[AssistantMessage] = (),
        tutorial_id: str | None = None,
    ) -> Decision:
        """Hand over; ``tutorial_id`` names a tutorial that has just ended, if any."""
        step_id = None
        if state.tutorial:
            tutorial_id = state.tutorial.get("tutorial_id")
            step_id = state.tutorial.get("step_id")
        summary = self._summary(state, reason, intent, tutorial_id)
        state.handed_off = True
        state.tutorial = None
        messages = [*lead, TextMessage(_HANDOFF_TEXT[state.language]), HandoffMessage(summary)]
        return Decision(state, messages, "handoff", intent, state.language, tutorial_id, step_id)

    def _summary(
        self, state: DialogueState, reason: str, intent: str | None, tutorial_id: str | None
    ) -> HandoffSummary:
        sentiment: Literal["neutre", "agacé", "très mécontent"] = (
            "très mécontent" if state.irritation >= 2 else "agacé" if state.irritation else "neutre"
        )
        return HandoffSummary(
            wants=state.first_request or "(pas encore précisé)",
            reason=reason,
            intent=state.last_intent if intent in (None, "oos", ADVISOR_INTENT) else intent,
            tutorial_id=tutorial_id,
            steps_done=tuple(state.steps_done),
            entities=dict(state.entities),
            sentiment=sentiment,
        )


def _position(tutorial_state: TutorialState) -> str | None:
    """The pending step of a running tutorial, or the last step of one that ended."""
    if tutorial_state.step_id is not None or not tutorial_state.history:
        return tutorial_state.step_id
    return tutorial_state.history[-1]


def _convert(output: Output) -> AssistantMessage | None:
    if isinstance(output, TextOutput):
        return TextMessage(output.text, step_id=output.step_id)
    if isinstance(output, ButtonsOutput):
        buttons = tuple(ButtonChoice(b.payload, b.label) for b in output.buttons)
        return ButtonsMessage(buttons, output.free_text, output.step_id)
    if isinstance(output, ImageOutput):
        return ImageMessage(output.path, output.alt)
    return None  # handoff and end are handled by the policy
