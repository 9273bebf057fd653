"""The tutorial runner: pure functions of a serialisable state.

``start(tutorial_id)`` and ``advance(state, user_input, entities)`` return the new
state and the messages to show. Nothing is kept between calls except the connectors,
so a state saved with ``to_dict`` resumes after a restart. Safety nets:

- an answer that matches no button (and no entity or free text when allowed) re-asks
  the question; ``max_unrecognised`` such answers in a row hand over to an advisor;
- a ``not_working`` button ("ça ne marche toujours pas") chosen ``max_not_working``
  times hands over;
- a connector failure goes to the action's ``on_error`` step, or hands over;
- a state saved by an older version of the tutorial restarts it, keeping the slots.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from allo.assistant.flows.connectors import ConnectorRegistry
from allo.assistant.flows.model import (
    Action,
    Ask,
    Branch,
    End,
    Handoff,
    Say,
    Tutorial,
    TutorialError,
    fill,
)
from allo.assistant.flows.state import (
    Button,
    ButtonsOutput,
    EndOutput,
    HandoffOutput,
    ImageOutput,
    Output,
    TextOutput,
    TutorialState,
)
from allo.assistant.nlu.entities import Entity
from allo.errors import InvalidInputError, NotFoundError, RuntimeFailure, UserError

#: steps run in one turn at most (a branch looping on itself without a question)
MAX_STEPS_PER_TURN = 200

_NOT_UNDERSTOOD = {
    "fr": "Je n'ai pas compris votre réponse. Choisissez une des propositions ci-dessous.",
    "en": "I did not understand your answer. Please choose one of the options below.",
}
_NOT_UNDERSTOOD_FREE = {
    "fr": "Je n'ai pas compris votre réponse. Pouvez-vous reformuler ?",
    "en": "I did not understand your answer. Could you rephrase it?",
}
_UPDATED = {
    "fr": "Ce guide a été mis à jour depuis notre dernier échange : reprenons depuis le début.",
    "en": "This guide was updated since we last spoke: let us start again from the beginning.",
}
_HANDOFF = {
    "fr": "Je vous mets en relation avec un conseiller Ondea, qui aura le résumé de nos échanges.",
    "en": "I am transferring you to an Ondea advisor, who will see a summary of our exchange.",
}

Entities = Sequence[Entity] | Mapping[str, str]


class TutorialEngine:
    """Runs tutorials; ``connectors`` must provide every connector they name."""

    def __init__(self, tutorials: Mapping[str, Tutorial], connectors: ConnectorRegistry) -> None:
        for tutorial in tutorials.values():
            for step in tutorial.steps:
                if isinstance(step, Action) and step.connector not in connectors:
                    raise TutorialError(
                        f"tutorial {tutorial.id!r}: step {step.id!r}: connector "
                        f"{step.connector!r} is not registered "
                        f"(registered: {', '.join(connectors.names()) or 'none'})"
                    )
        self.tutorials = dict(tutorials)
        self.connectors = connectors

    def for_intent(self, intent: str) -> Tutorial | None:
        """The first tutorial triggered by ``intent``, if any."""
        return next((t for t in self.tutorials.values() if intent in t.intents), None)

    def tutorial(self, tutorial_id: str) -> Tutorial:
        try:
            return self.tutorials[tutorial_id]
        except KeyError:
            known = ", ".join(sorted(self.tutorials)) or "none"
            raise NotFoundError(f"no tutorial {tutorial_id!r} (known: {known})") from None

    def start(
        self, tutorial_id: str, entities: Entities = (), language: str = "fr"
    ) -> tuple[TutorialState, list[Output]]:
        """Begin a tutorial; entities of the first message pre-fill its slots."""
        tutorial = self.tutorial(tutorial_id)
        state = TutorialState(tutorial.id, tutorial.version, tutorial.steps[0].id)
        state.language = "en" if language == "en" else "fr"
        _fill_from_entities(tutorial, state, _as_mapping(entities))
        outputs: list[Output] = []
        self._run(tutorial, state, outputs)
        return state, outputs

    def advance(
        self, state: TutorialState, user_input: str, entities: Entities = ()
    ) -> tuple[TutorialState, list[Output]]:
        """Answer the pending question with a button payload, a label or free text."""
        tutorial = self.tutorial(state.tutorial_id)
        state = TutorialState.from_dict(state.to_dict())  # never mutate the caller's copy
        if state.finished or state.step_id is None:
            raise InvalidInputError(
                f"tutorial {state.tutorial_id!r} is finished; start it again to restart"
            )
        found = _as_mapping(entities)
        if state.version != tutorial.version or not _is_ask(tutorial, state.step_id):
            kept = {k: v for k, v in state.slots.items() if tutorial.slot(k) is not None}
            state = TutorialState(tutorial.id, tutorial.version, tutorial.steps[0].id, kept)
            state.language = "en" if state.language == "en" else "fr"
            outputs: list[Output] = [TextOutput(_UPDATED[state.language], tutorial.steps[0].id)]
            _fill_from_entities(tutorial, state, found)
            self._run(tutorial, state, outputs)
            return state, outputs
        step = tutorial.step(state.step_id or "")
        assert isinstance(step, Ask)
        outputs = []
        value, target, not_working = _interpret(tutorial, step, user_input, found)
        if value is None:
            state.unrecognised += 1
            if state.unrecognised >= tutorial.max_unrecognised:
                self._handoff(tutorial, state, "réponses non comprises", outputs)
                return state, outputs
            lang = state.language
            message = _NOT_UNDERSTOOD if step.buttons else _NOT_UNDERSTOOD_FREE
            outputs.append(TextOutput(message[lang], step.id))
            self._ask(tutorial, step, state, outputs)
            return state, outputs
        state.unrecognised = 0
        state.slots[step.slot] = value
        state.history.append(step.id)
        _fill_from_entities(tutorial, state, found)
        if not_working:
            state.not_working += 1
            if state.not_working >= tutorial.max_not_working:
                self._handoff(tutorial, state, "le problème persiste après les étapes", outputs)
                return state, outputs
        state.step_id = target or _following(tutorial, step.id, step.next)
        self._run(tutorial, state, outputs)
        return state, outputs

    def accepts(self, state: TutorialState, user_input: str, entities: Entities = ()) -> bool:
        """Whether ``advance`` would take the input as an answer to the pending question.

        The dialogue policy asks this before treating a message as a digression (a
        question to the knowledge base in the middle of a tutorial).
        """
        tutorial = self.tutorial(state.tutorial_id)
        if state.finished or state.step_id is None or state.version != tutorial.version:
            return False
        if not _is_ask(tutorial, state.step_id):
            return False
        step = tutorial.step(state.step_id)
        assert isinstance(step, Ask)
        value, _, _ = _interpret(tutorial, step, user_input, _as_mapping(entities))
        return value is not None

    def prompt(self, state: TutorialState) -> list[Output]:
        """The pending question again (text and buttons), the state unchanged."""
        tutorial = self.tutorial(state.tutorial_id)
        if state.finished or state.step_id is None or not _is_ask(tutorial, state.step_id):
            return []
        step = tutorial.step(state.step_id)
        assert isinstance(step, Ask)
        outputs: list[Output] = []
        self._ask(tutorial, step, TutorialState.from_dict(state.to_dict()), outputs)
        return outputs

    def _run(self, tutorial: Tutorial, state: TutorialState, outputs: list[Output]) -> None:
        for _ in range(MAX_STEPS_PER_TURN):
            if state.step_id is None:
                state.finished = True
                return
            step = tutorial.step(state.step_id)
            lang = state.language
            if isinstance(step, Ask):
                if step.id not in state.history and _acceptable(step, state.slots.get(step.slot)):
                    state.history.append(step.id)
                    state.step_id = _following(tutorial, step.id, step.next)
                    continue
                self._ask(tutorial, step, state, outputs)
                return
            if isinstance(step, Handoff):
                if step.text is not None:
                    outputs.append(TextOutput(fill(step.text.get(lang), state.slots), step.id))
                state.history.append(step.id)
                self._handoff(tutorial, state, step.reason, outputs, announce=step.text is None)
                return
            if isinstance(step, End):
                if step.text is not None:
                    outputs.append(TextOutput(fill(step.text.get(lang), state.slots), step.id))
                state.history.append(step.id)
                outputs.append(EndOutput(step.resolved, tutorial.id))
                state.step_id, state.finished = None, True
                return
            state.history.append(step.id)
            if isinstance(step, Say):
                outputs.append(TextOutput(fill(step.text.get(lang), state.slots), step.id))
                if step.image:
                    outputs.append(ImageOutput(step.image, step.text.fr, step.id))
                state.step_id = _following(tutorial, step.id, step.next)
            elif isinstance(step, Branch):
                state.step_id = _branch(step, state)
            else:
                assert isinstance(step, Action)
                failed = self._act(step, state)
                if failed is not None and step.on_error is None:
                    self._handoff(tutorial, state, failed, outputs)
                    return
                target = step.on_error if failed is not None else step.next
                state.step_id = (
                    target if failed is not None else _following(tutorial, step.id, target)
                )
        raise RuntimeFailure(
            f"tutorial {tutorial.id!r} ran {MAX_STEPS_PER_TURN} steps without a question; "
            "check its branches for a loop",
            retryable=False,
        )

    def _act(self, step: Action, state: TutorialState) -> str | None:
        """Call the connector (a retryable failure is tried once more); the error or None."""
        args = {key: fill(template, state.slots) for key, template in step.args.items()}
        for attempt in range(2):
            try:
                state.slots[step.result] = self.connectors.call(step.connector, args)
                return None
            except UserError as error:
                state.slots[step.result] = {"error": "invalid", "message": str(error)}
                return f"action {step.connector} refusée : {error}"
            except RuntimeFailure as error:
                state.slots[step.result] = {"error": "failed", "message": str(error)}
                if not error.retryable or attempt == 1:
                    return f"action {step.connector} en échec : {error}"
        return None  # pragma: no cover

    def _ask(
        self, tutorial: Tutorial, step: Ask, state: TutorialState, outputs: list[Output]
    ) -> None:
        lang = state.language
        state.step_id = step.id
        outputs.append(TextOutput(fill(step.text.get(lang), state.slots), step.id))
        buttons = tuple(Button(b.payload, b.label.get(lang)) for b in step.buttons)
        outputs.append(ButtonsOutput(buttons, step.free_text, step.id))

    def _handoff(
        self,
        tutorial: Tutorial,
        state: TutorialState,
        reason: str,
        outputs: list[Output],
        announce: bool = True,
    ) -> None:
        if announce:
            outputs.append(TextOutput(_HANDOFF[state.language], state.step_id or ""))
        outputs.append(
            HandoffOutput(
                reason=reason,
                tutorial_id=tutorial.id,
                steps_done=tuple(state.history),
                slots={k: v for k, v in state.slots.items() if not k.startswith("_")},
                step_id=state.step_id,
            )
        )
        state.step_id, state.finished = None, True


def _is_ask(tutorial: Tutorial, step_id: str) -> bool:
    try:
        return isinstance(tutorial.step(step_id), Ask)
    except KeyError:
        return False


def _acceptable(step: Ask, value: Any) -> bool:
    """Whether a pre-filled slot answers the question (then it is not asked)."""
    if value in (None, ""):
        return False
    return step.free_text or not step.buttons or any(b.payload == value for b in step.buttons)


def _following(tutorial: Tutorial, step_id: str, next_id: str | None) -> str | None:
    if next_id is not None:
        return next_id
    index = tutorial.index(step_id) + 1
    return tutorial.steps[index].id if index < len(tutorial.steps) else None


def _branch(step: Branch, state: TutorialState) -> str:
    if step.entity is not None:
        value: Any = state.slots.get(f"_entity_{step.entity}")
    else:
        assert step.slot is not None
        value = state.slots.get(step.slot)
        if step.field is not None:
            value = value.get(step.field) if isinstance(value, dict) else None
    if value is not None:
        for case in step.cases:
            if case.matches(str(value)):
                return case.goto
    return step.default


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _interpret(
    tutorial: Tutorial, step: Ask, user_input: str, entities: Mapping[str, str]
) -> tuple[str | None, str | None, bool]:
    """The value of the answer, the button's goto and whether it says "still broken"."""
    said = _normalise(user_input)
    for button in step.buttons:
        labels = {_normalise(button.label.fr), _normalise(button.label.en or "")}
        if user_input == button.payload or said in labels - {""}:
            return button.payload, button.goto, button.not_working
    slot = tutorial.slot(step.slot)
    if slot is not None and slot.entity != "text" and slot.entity in entities:
        value = entities[slot.entity]
        match = next((b for b in step.buttons if b.payload == value), None)
        if match is not None:
            return match.payload, match.goto, match.not_working
        if step.free_text or not step.buttons:
            return value, None, False
    if step.free_text and said and (slot is None or slot.entity == "text"):
        return " ".join(user_input.split()), None, False
    return None, None, False


def _as_mapping(entities: Entities) -> dict[str, str]:
    if isinstance(entities, Mapping):
        return {str(k): str(v) for k, v in entities.items()}
    found: dict[str, str] = {}
    for entity in entities:
        found.setdefault(entity.type, entity.value)
    return found


def _fill_from_entities(
    tutorial: Tutorial, state: TutorialState, entities: Mapping[str, str]
) -> None:
    for key in [k for k in state.slots if k.startswith("_entity_")]:
        del state.slots[key]  # a branch on an entity reads the last message only
    for entity_type, value in entities.items():
        state.slots[f"_entity_{entity_type}"] = value
    for slot in tutorial.slots:
        if slot.entity != "text" and slot.entity in entities and not state.slots.get(slot.name):
            state.slots[slot.name] = entities[slot.entity]


def connector_names(tutorials: Iterable[Tutorial]) -> set[str]:
    """Every connector the tutorials call."""
    return {s.connector for t in tutorials for s in t.steps if isinstance(s, Action)}
