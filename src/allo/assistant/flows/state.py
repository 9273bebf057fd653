"""What a running tutorial remembers, and what it says: both small and serialisable.

``TutorialState`` is a JSON-ready record (``to_dict`` / ``from_dict``) so that a
conversation can be stored and resumed after a restart. Outputs are typed messages the
channel renders: text, quick-reply buttons, an image, a handoff request, the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from allo.errors import InvalidInputError


@dataclass
class TutorialState:
    """Where a conversation stands in a tutorial."""

    tutorial_id: str
    version: int
    step_id: str | None
    slots: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    unrecognised: int = 0
    not_working: int = 0
    language: str = "fr"
    finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "tutorial_id": self.tutorial_id,
            "version": self.version,
            "step_id": self.step_id,
            "slots": dict(self.slots),
            "history": list(self.history),
            "unrecognised": self.unrecognised,
            "not_working": self.not_working,
            "language": self.language,
            "finished": self.finished,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TutorialState:
        """Rebuild a state saved by ``to_dict``; a malformed record is an input error."""
        if not isinstance(data, dict):
            raise InvalidInputError("a tutorial state must be a mapping saved by to_dict()")
        try:
            state = cls(
                tutorial_id=str(data["tutorial_id"]),
                version=int(data["version"]),
                step_id=None if data["step_id"] is None else str(data["step_id"]),
                slots=dict(data.get("slots") or {}),
                history=[str(step) for step in data.get("history") or []],
                unrecognised=int(data.get("unrecognised", 0)),
                not_working=int(data.get("not_working", 0)),
                language=str(data.get("language", "fr")),
                finished=bool(data.get("finished", False)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInputError(
                f"invalid tutorial state ({error!r}); start the tutorial again"
            ) from None
        return state


@dataclass(frozen=True)
class Button:
    """A quick reply: the payload to send back and the label to show."""

    payload: str
    label: str


@dataclass(frozen=True)
class TextOutput:
    text: str
    step_id: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class ImageOutput:
    path: str
    alt: str
    step_id: str
    kind: Literal["image"] = "image"


@dataclass(frozen=True)
class ButtonsOutput:
    """Quick replies for the question just asked; ``free_text`` allows typing instead."""

    buttons: tuple[Button, ...]
    free_text: bool
    step_id: str
    kind: Literal["buttons"] = "buttons"


@dataclass(frozen=True)
class HandoffOutput:
    """A request for a human advisor, with what the tutorial learnt so far."""

    reason: str
    tutorial_id: str
    steps_done: tuple[str, ...]
    slots: dict[str, Any]
    step_id: str | None
    kind: Literal["handoff"] = "handoff"

    @property
    def summary(self) -> str:
        """One French line for the advisor queue."""
        filled = ", ".join(f"{k}={v}" for k, v in self.slots.items() if not isinstance(v, dict))
        return (
            f"Tutoriel {self.tutorial_id} : {self.reason}. Étapes faites : "
            f"{', '.join(self.steps_done) or 'aucune'}. Informations : {filled or 'aucune'}."
        )


@dataclass(frozen=True)
class EndOutput:
    resolved: bool
    tutorial_id: str
    kind: Literal["end"] = "end"


Output = TextOutput | ImageOutput | ButtonsOutput | HandoffOutput | EndOutput
