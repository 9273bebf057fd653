"""Play stories through the real :class:`Assistant` and compare what it does.

Each story gets a fresh conversation, its own connectors (their counters start again)
and a scripted clock, so that booked dates and ticket numbers are the same on every run.
All stories share one temporary SQLite store: messages go through the same checks,
persistence and statuses as on the web. A story stops at its first failing step, which
is reported with what was expected and what the assistant did.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allo.assistant.flows import TutorialEngine, demo_registry
from allo.assistant.flows.model import Tutorial
from allo.assistant.policy import (
    Answerer,
    ButtonsMessage,
    CitationRef,
    CustomerMessage,
    Decision,
    DialoguePolicy,
    DialogueState,
    TextMessage,
    Understander,
)
from allo.assistant.session import Assistant, Reply
from allo.assistant.store import ConversationStore
from allo.assistant.stories.model import Story, StoryFileError, StoryStep
from allo.errors import AlloError
from allo.testing.clock import ScriptedClock

if TYPE_CHECKING:
    from allo.knowledge.service import KnowledgeBase

#: the default time of every story: Thursday 1 October 2026, 10:00 UTC
DEFAULT_NOW = datetime(2026, 10, 1, 10, 0, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class StepFailure:
    """The first step of a story where the assistant did not do what was expected."""

    step: int
    said: str
    check: str
    expected: str
    actual: str
    reply: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "said": self.said,
            "check": self.check,
            "expected": self.expected,
            "actual": self.actual,
            "reply": self.reply,
        }


@dataclass(frozen=True)
class StoryResult:
    story: Story
    failure: StepFailure | None
    steps_run: int
    seconds: float

    @property
    def passed(self) -> bool:
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.story.name,
            "file": str(self.story.file),
            "passed": self.passed,
            "steps": len(self.story.steps),
            "steps_run": self.steps_run,
            "seconds": round(self.seconds, 3),
            "failure": self.failure.to_dict() if self.failure else None,
        }


@dataclass
class RunReport:
    results: list[StoryResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "stories": len(self.results),
            "passed": self.passed,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "results": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class Observed:
    """What the assistant did with one message, in the terms of the expectations."""

    decision: Decision | None
    status: str
    texts: tuple[str, ...] = ()
    buttons: tuple[str, ...] = ()
    citations: tuple[CitationRef, ...] = ()

    @property
    def shown(self) -> str:
        return "\n".join(self.texts)


class _RecordingPolicy(DialoguePolicy):
    """The real policy; remembers its last decision and reads dates from the story clock."""

    def __init__(self, *args: Any, clock: ScriptedClock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.last: Decision | None = None

    def respond(
        self, state: DialogueState, message: CustomerMessage, today: date | None = None
    ) -> Decision:
        today = today or datetime.fromtimestamp(self.clock.now(), tz=UTC).date()
        self.last = super().respond(state, message, today)
        return self.last


class StoryRunner:
    """Plays stories on an :class:`Assistant` built from these parts."""

    def __init__(
        self,
        understander: Understander,
        tutorials: Mapping[str, Tutorial],
        knowledge: Answerer,
        workdir: Path | None = None,
    ) -> None:
        self.understander = understander
        self.tutorials = dict(tutorials)
        self.knowledge = knowledge
        self.workdir = workdir

    def check(self, stories: Sequence[Story], intents: Iterable[str]) -> None:
        """Raise :class:`StoryFileError` for unknown intents, tutorials or steps."""
        known_intents = set(intents)
        problems: list[str] = []
        for story in stories:
            for step in story.steps:
                where = f"{story.file}: story {story.name!r}, step {step.number}"
                problems.extend(f"{where}: {p}" for p in self._unknown(step, known_intents))
        if problems:
            raise StoryFileError(problems)

    def _unknown(self, step: StoryStep, intents: set[str]) -> list[str]:
        found = []
        expect = step.expect
        handoff = expect.get("handoff") or {}
        for intent in (expect.get("intent"), handoff.get("intent")):
            if intent is not None and intent not in intents:
                found.append(f"unknown intent {intent!r} (known: {', '.join(sorted(intents))})")
        for tutorial in (expect.get("tutorial"), handoff.get("tutorial")):
            if tutorial is not None and tutorial not in self.tutorials:
                known = ", ".join(sorted(self.tutorials))
                found.append(f"unknown tutorial {tutorial!r} (known: {known})")
        step_id = expect.get("step")
        if step_id is not None:
            owner = expect.get("tutorial")
            candidates = [self.tutorials[owner]] if owner in self.tutorials else []
            candidates = candidates or list(self.tutorials.values())
            if not any(step_id in {s.id for s in t.steps} for t in candidates):
                where = f"tutorial {owner!r}" if owner in self.tutorials else "any tutorial"
                found.append(f"step {step_id!r} is not a step of {where}")
        return found

    def run(self, stories: Sequence[Story], fail_fast: bool = False) -> RunReport:
        """Play every story (stop after the first failure with ``fail_fast``)."""
        started = time.perf_counter()
        report = RunReport()
        with tempfile.TemporaryDirectory(prefix="allo-stories-", dir=self.workdir) as folder:
            store = ConversationStore(f"sqlite:///{Path(folder) / 'stories.db'}")
            store.migrate()
            try:
                for story in stories:
                    result = self.play(story, store)
                    report.results.append(result)
                    if fail_fast and not result.passed:
                        break
            finally:
                store.close()
        report.seconds = time.perf_counter() - started
        return report

    def play(self, story: Story, store: ConversationStore) -> StoryResult:
        """One story in a fresh conversation; stops at the first failing step."""
        started = time.perf_counter()
        clock = ScriptedClock(story.now if story.now is not None else DEFAULT_NOW)
        engine = TutorialEngine(self.tutorials, demo_registry(clock))
        policy = _RecordingPolicy(self.understander, engine, self.knowledge, clock=clock)
        assistant = Assistant(store, policy, clock)
        opened = assistant.open()
        offered: tuple[str, ...] = ()
        for number, step in enumerate(story.steps, start=1):
            clock.advance(30.0)  # a customer takes a little time to answer
            if step.button is not None and step.button not in offered:
                failure = StepFailure(
                    number,
                    step.said,
                    "button",
                    f"a button {step.button!r} offered by the previous reply",
                    f"offered: {', '.join(offered) or 'no button'}",
                    "",
                )
                return StoryResult(story, failure, number - 1, time.perf_counter() - started)
            message = CustomerMessage(text=step.user, payload=step.button)
            policy.last = None
            try:
                reply = assistant.post(
                    opened.conversation_id, opened.customer_token, f"m{number}", message
                )
            except Exception as error:  # one story's crash must not stop the others
                kind = "error" if isinstance(error, AlloError) else type(error).__name__
                failure = StepFailure(number, step.said, "reply", "a reply", f"{kind}: {error}", "")
                return StoryResult(story, failure, number - 1, time.perf_counter() - started)
            observed = _observe(policy.last, reply)
            mismatch = compare(step, observed)
            if mismatch is not None:
                return StoryResult(story, mismatch, number, time.perf_counter() - started)
            offered = observed.buttons
        return StoryResult(story, None, len(story.steps), time.perf_counter() - started)


def _observe(decision: Decision | None, reply: Reply) -> Observed:
    if decision is None:
        return Observed(None, reply.status)
    texts = tuple(m.text for m in decision.messages if isinstance(m, TextMessage))
    menus = [m for m in decision.messages if isinstance(m, ButtonsMessage)]
    buttons = tuple(b.payload for b in menus[-1].buttons) if menus else ()
    citations = tuple(
        c for m in decision.messages if isinstance(m, TextMessage) for c in m.citations
    )
    return Observed(decision, reply.status, texts, buttons, citations)


def compare(step: StoryStep, seen: Observed) -> StepFailure | None:
    """The first expectation of ``step`` that ``seen`` does not meet, if any."""
    decision = seen.decision
    for key, expected in step.expect.items():
        if decision is None:
            actual = f"no reply (the conversation is {seen.status})"
            return _failure(step, seen, key, _show(expected), actual)
        problem = _CHECKS[key](expected, decision, seen)
        if problem is not None:
            return _failure(step, seen, key, *problem)
    return None


def _failure(step: StoryStep, seen: Observed, key: str, expected: str, actual: str) -> StepFailure:
    reply = "\n".join(t if len(t) <= 120 else t[:117] + "..." for t in seen.texts)
    return StepFailure(step.number, step.said, key, expected, actual, reply)


Problem = tuple[str, str] | None


def _equal(expected: Any, actual: Any) -> Problem:
    return None if expected == actual else (_show(expected), _show(actual))


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _intent(expected: Any, decision: Decision, seen: Observed) -> Problem:
    understood = decision.understanding
    if understood is None:
        return _equal(expected, None)
    if understood.intent == expected:
        return None
    ranking = ", ".join(f"{name} {score:.2f}" for name, score in understood.ranking[:3])
    return expected, f"{understood.intent} (ranking: {ranking})"


def _entities(expected: Mapping[str, str], decision: Decision, seen: Observed) -> Problem:
    found = decision.understanding.entities if decision.understanding else ()
    missing = {
        kind: value
        for kind, value in expected.items()
        if not any(e.type == kind and e.value == value for e in found)
    }
    if not missing:
        return None
    return _show(missing), _show({e.type: e.value for e in found} or None)


def _says(expected: tuple[Any, ...], decision: Decision, seen: Observed) -> Problem:
    missing = [p for p in expected if not p.found_in(seen.shown)]
    return (f"text containing {missing[0]}", "see reply") if missing else None


def _not_says(expected: tuple[Any, ...], decision: Decision, seen: Observed) -> Problem:
    present = [p for p in expected if p.found_in(seen.shown)]
    return (f"no text containing {present[0]}", "see reply") if present else None


def _cites(expected: tuple[str, ...], decision: Decision, seen: Observed) -> Problem:
    def cited(wanted: str) -> bool:
        wanted = wanted.casefold()
        return any(
            wanted in {c.source.casefold(), Path(c.source).stem.casefold()}
            or wanted in c.title.casefold()
            for c in seen.citations
        )

    missing = [w for w in expected if not cited(w)]
    if not missing:
        return None
    sources = [f"{Path(c.source).stem} ({c.title})" for c in seen.citations]
    return f"a citation of {missing[0]!r}", _show(sources or None)


def _handoff(expected: Mapping[str, Any] | None, decision: Decision, seen: Observed) -> Problem:
    summary = decision.handoff
    if expected is None or summary is None:
        wanted, got = expected is not None, summary is not None
        return None if wanted == got else (f"handoff: {wanted}", f"handoff: {got}")
    for name, value in expected.items():
        actual: Any = getattr(summary, "tutorial_id" if name == "tutorial" else name)
        if name in ("reason", "wants"):
            ok = str(value).casefold() in str(actual).casefold()
        elif name == "entities":
            ok = all(actual.get(k) == v for k, v in value.items())
        elif name == "steps_done":
            ok = all(s in actual for s in value)
        else:
            ok = value == actual
        if not ok:
            return f"handoff {name}: {_show(value)}", _show(actual)
    return None


_CHECKS: dict[str, Any] = {
    "intent": _intent,
    "language": lambda expected, d, s: _equal(expected, d.language),
    "entities": _entities,
    "action": lambda expected, d, s: _equal(expected, d.action),
    "tutorial": lambda expected, d, s: _equal(expected, d.tutorial_id),
    "step": lambda expected, d, s: _equal(expected, d.step_id),
    "says": _says,
    "not_says": _not_says,
    "buttons": lambda expected, d, s: _equal(tuple(expected), s.buttons),
    "cites": _cites,
    "abstains": lambda expected, d, s: _equal(expected, d.abstained),
    "handoff": _handoff,
}


def runner_for(
    knowledge: KnowledgeBase, workdir: Path | None = None
) -> tuple[StoryRunner, set[str]]:
    """A runner on the demo intents and tutorials and this knowledge base, and its intents.

    The intent classifier is the server's (``demo_understanding``): trained on the
    knowledge base's embedder, or on TF-IDF n-grams alone without one.
    """
    from allo.assistant.flows import demo_folder, load_tutorials
    from allo.assistant.nlu import load_examples
    from allo.assistant.session import INTENTS_FILE, demo_understanding

    understander = demo_understanding(knowledge)
    intents = {e.intent for e in load_examples(INTENTS_FILE)}
    return StoryRunner(understander, load_tutorials(demo_folder()), knowledge, workdir), intents
