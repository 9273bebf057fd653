"""The tutorial file format: YAML validated once, at load, with exact errors.

A tutorial is data: an id, a title, the intents that trigger it, slots to fill and a
list of steps (``say``, ``ask``, ``branch``, ``action``, ``handoff``, ``end``). Steps run
in order unless a step names another with ``next`` / ``goto``. See docs/tutorials.md.

Every error names the file, the tutorial id and the field, for instance::

    bad.yaml: tutorial 'wifi': steps[2] (id 'route'): cases[0].goto: unknown step 'nowhere'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from allo.errors import ConfigError

#: entity types of :class:`allo.assistant.nlu.EntityExtractor` a slot may take; ``text``: free
ENTITY_TYPES = frozenset(
    {
        "box_model", "light_colour", "light_state", "phone_number", "customer_id",
        "contract_id", "ticket_id", "date", "amount", "address", "text",
    }
)  # fmt: skip
_ID = r"^[a-z][a-z0-9_]*$"
_PLACEHOLDER = re.compile(r"\{(\w+)(?:\.(\w+))?\}")


class TutorialError(ConfigError):
    """A tutorial file that cannot be used as it is; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A text in French, optionally in English; a plain YAML string is French."""

    fr: str = Field(min_length=1)
    en: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        return {"fr": value} if isinstance(value, str) else value

    def get(self, language: str) -> str:
        """The text in ``language``, French when there is no translation."""
        return self.en if language == "en" and self.en else self.fr


class Slot(_Strict):
    """A value the tutorial collects: from an entity of the message, or free text."""

    name: str = Field(pattern=_ID)
    entity: str = "text"
    prompt: Text | None = None

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str) -> str:
        if value not in ENTITY_TYPES:
            raise ValueError(
                f"unknown entity type {value!r}; use one of {', '.join(sorted(ENTITY_TYPES))}"
            )
        return value


class _Step(_Strict):
    id: str = Field(pattern=_ID)
    next: str | None = None


class Say(_Step):
    """Show a text, and optionally an image (a path relative to the tutorials folder)."""

    type: Literal["say"]
    text: Text
    image: str | None = None


class Button(_Strict):
    """A quick reply: the payload stored in the slot, its label, an optional ``goto``.

    ``not_working: true`` marks "ça ne marche toujours pas": choosing it twice hands over.
    """

    payload: str = Field(pattern=r"^[a-z0-9_]+$")
    label: Text
    goto: str | None = None
    not_working: bool = False


class Ask(_Step):
    """A question, answered by a button, an entity of the slot's type or free text."""

    type: Literal["ask"]
    text: Text
    slot: str
    buttons: list[Button] = []
    free_text: bool = False

    @model_validator(mode="after")
    def _answerable(self) -> Ask:
        if not self.buttons and not self.free_text:
            raise ValueError("a question needs buttons or free_text: true")
        payloads = [button.payload for button in self.buttons]
        duplicates = sorted({p for p in payloads if payloads.count(p) > 1})
        if duplicates:
            raise ValueError(f"duplicate button payload {duplicates[0]!r}")
        return self


class Case(_Strict):
    """One branch: when the value is ``equals`` (or one of a list), go to ``goto``."""

    equals: str | list[str]
    goto: str

    def matches(self, value: str) -> bool:
        return value in self.equals if isinstance(self.equals, list) else value == self.equals


class Branch(_Step):
    """Go to a step according to a slot value (``field`` of a connector result) or entity."""

    type: Literal["branch"]
    slot: str | None = None
    field: str | None = None
    entity: str | None = None
    cases: list[Case] = Field(min_length=1)
    default: str

    @model_validator(mode="after")
    def _one_source(self) -> Branch:
        if (self.slot is None) == (self.entity is None):
            raise ValueError("a branch needs exactly one of 'slot' or 'entity'")
        if self.entity is not None and self.entity not in ENTITY_TYPES:
            raise ValueError(f"unknown entity type {self.entity!r}")
        return self


class Action(_Step):
    """Call a connector with arguments (``{slot}`` placeholders); store its result."""

    type: Literal["action"]
    connector: str = Field(min_length=1)
    args: dict[str, str] = {}
    result: str = Field(pattern=_ID)
    on_error: str | None = None


class Handoff(_Step):
    """Hand the conversation over to a human advisor."""

    type: Literal["handoff"]
    reason: str = Field(min_length=1)
    text: Text | None = None


class End(_Step):
    """Finish the tutorial, the problem resolved or not."""

    type: Literal["end"]
    resolved: bool
    text: Text | None = None


Step = Annotated[Say | Ask | Branch | Action | Handoff | End, Field(discriminator="type")]


class Tutorial(_Strict):
    """One guided tutorial; ``version`` changes when its steps change."""

    id: str = Field(pattern=_ID)
    version: int = Field(default=1, ge=1)
    title: Text
    intents: list[str] = Field(min_length=1)
    slots: list[Slot] = []
    steps: list[Step] = Field(min_length=1)
    max_unrecognised: int = Field(default=3, ge=1)
    max_not_working: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _references(self) -> Tutorial:
        _check_references(self)
        return self

    def step(self, step_id: str) -> Say | Ask | Branch | Action | Handoff | End:
        return self.steps[self.index(step_id)]

    def index(self, step_id: str) -> int:
        for i, step in enumerate(self.steps):
            if step.id == step_id:
                return i
        raise KeyError(step_id)

    def slot(self, name: str) -> Slot | None:
        return next((slot for slot in self.slots if slot.name == name), None)


class _LocatedError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def _check_references(tutorial: Tutorial) -> None:
    ids = [step.id for step in tutorial.steps]
    slots = {slot.name for slot in tutorial.slots}
    names = [slot.name for slot in tutorial.slots]
    for name in names:
        if names.count(name) > 1:
            raise _LocatedError("slots", f"duplicate slot {name!r}")
    results = {step.result for step in tutorial.steps if isinstance(step, Action)}
    known = slots | results
    for i, step in enumerate(tutorial.steps):
        where = f"steps[{i}] (id {step.id!r})"
        if ids.index(step.id) != i:
            raise _LocatedError(where, f"duplicate step id {step.id!r}")
        targets: list[tuple[str, str | None]] = [("next", step.next)]
        if isinstance(step, Ask):
            if step.slot not in slots:
                raise _LocatedError(f"{where}: slot", f"undeclared slot {step.slot!r}")
            targets += [(f"buttons[{j}].goto", b.goto) for j, b in enumerate(step.buttons)]
        if isinstance(step, Branch):
            if step.slot is not None and step.slot not in known:
                raise _LocatedError(f"{where}: slot", f"undeclared slot {step.slot!r}")
            targets += [(f"cases[{j}].goto", case.goto) for j, case in enumerate(step.cases)]
            targets.append(("default", step.default))
        if isinstance(step, Action):
            targets.append(("on_error", step.on_error))
            for key, template in step.args.items():
                _check_placeholders(template, known, f"{where}: args.{key}")
        for field in ("text",):
            text = getattr(step, field, None)
            if isinstance(text, Text):
                for variant in (text.fr, text.en or ""):
                    _check_placeholders(variant, known, f"{where}: {field}")
        for name, target in targets:
            if target is not None and target not in ids:
                raise _LocatedError(f"{where}: {name}", f"unknown step {target!r}")
    last = tutorial.steps[-1]
    if not isinstance(last, Handoff | End) and last.next is None and not isinstance(last, Branch):
        raise _LocatedError(
            f"steps[{len(ids) - 1}] (id {last.id!r})",
            "the last step must be 'end' or 'handoff', or name its 'next' step",
        )


def _check_placeholders(template: str, known: set[str], where: str) -> None:
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) not in known:
            raise _LocatedError(where, f"placeholder {{{match.group(1)}}} names no slot")


def fill(template: str, slots: Mapping[str, Any]) -> str:
    """Replace ``{slot}`` and ``{result.field}`` placeholders by the slots' values."""

    def value(match: re.Match[str]) -> str:
        found = slots.get(match.group(1))
        if match.group(2) is not None:
            found = found.get(match.group(2)) if isinstance(found, dict) else None
        return "" if found is None else str(found)

    return _PLACEHOLDER.sub(value, template)


def load_tutorial(path: str | Path) -> Tutorial:
    """Read and validate one tutorial file; :class:`TutorialError` says what is wrong."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TutorialError(f"{path}: cannot read the file ({error.strerror})") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise TutorialError(f"{path}: invalid YAML{line}; check the indentation") from error
    if not isinstance(document, dict):
        raise TutorialError(f"{path}: expected a mapping with 'id', 'title' and 'steps'")
    tutorial_id = document.get("id")
    prefix = f"{path}: tutorial {tutorial_id!r}" if isinstance(tutorial_id, str) else f"{path}"
    try:
        tutorial = Tutorial.model_validate(document)
    except ValidationError as error:
        raise TutorialError(f"{prefix}: {_describe(error, document)}") from None
    for i, step in enumerate(tutorial.steps):
        if isinstance(step, Say) and step.image is not None:
            image = Path(step.image)
            where = f"{prefix}: steps[{i}] (id {step.id!r}): image"
            if image.is_absolute() or ".." in image.parts:
                raise TutorialError(f"{where}: use a path inside the tutorials folder")
            if not (path.parent / image).is_file():
                raise TutorialError(f"{where}: no file {step.image!r} next to the tutorial")
    return tutorial


def _describe(error: ValidationError, document: dict[str, Any]) -> str:
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    loc = list(first["loc"])
    parts: list[str] = []
    steps = document.get("steps")
    i = 0
    while i < len(loc):
        item = loc[i]
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
            if parts == ["steps" + f"[{item}]"] and isinstance(steps, list):
                step = steps[item]
                if isinstance(step, dict) and isinstance(step.get("id"), str):
                    parts[-1] += f" (id {step['id']!r})"
                if i + 1 < len(loc) and isinstance(step, dict) and loc[i + 1] == step.get("type"):
                    i += 1  # the discriminator's tag
        else:
            parts.append(str(item))
        i += 1
    where = ": ".join([parts[0], ".".join(parts[1:])]) if len(parts) > 1 else "".join(parts)
    return f"{where}: {message}" if where else message


def load_tutorials(folder: str | Path) -> dict[str, Tutorial]:
    """Every ``*.yaml`` tutorial of ``folder`` by id; two files with one id are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TutorialError(f"{folder}: not a folder of tutorials; check the path")
    tutorials: dict[str, Tutorial] = {}
    origin: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        tutorial = load_tutorial(path)
        if tutorial.id in tutorials:
            raise TutorialError(
                f"{path}: tutorial {tutorial.id!r}: id: already used by {origin[tutorial.id]}"
            )
        tutorials[tutorial.id] = tutorial
        origin[tutorial.id] = path
    return tutorials


def demo_folder() -> Path:
    """The folder of the French demo tutorials shipped with Allo."""
    return Path(__file__).resolve().parent.parent / "data" / "tutorials"
