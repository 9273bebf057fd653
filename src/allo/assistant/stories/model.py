"""Conversation test files ("stories"): the format, read and validated once, strictly.

A story file is YAML with one top-level key, ``stories``: a list of stories, each with a
``name`` (unique in the folder), an optional ``description``, an optional ``now`` (the
ISO date and time of the scripted clock, with its zone) and ``steps``. A step is either
``user: text`` or ``button: payload``, followed by what the assistant must do::

    stories:
      - name: installation fibre jusqu'au bout
        steps:
          - user: "Je viens de recevoir ma Livebox 6, je l'installe comment ?"
            intent: installation_box
            tutorial: installation_livebox
            step: verifier_carton
            buttons: [complet, incomplet]
          - button: complet
            says: fibre ou au cuivre

Every mistake is collected, with the file, the story, the step and what to fix, into a
:class:`StoryFileError`; nothing is half loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import yaml

from allo.assistant.policy import Action
from allo.errors import UserError

#: what ``action`` may name (``Decision.action``)
ACTIONS: tuple[str, ...] = get_args(Action)
#: the fields of a handoff summary a story may check
HANDOFF_FIELDS = ("reason", "wants", "intent", "tutorial", "sentiment", "entities", "steps_done")
SENTIMENTS = ("neutre", "agacé", "très mécontent")
#: the expectation keys, in the order they are checked
EXPECTATIONS = (
    "intent",
    "language",
    "entities",
    "action",
    "tutorial",
    "step",
    "says",
    "not_says",
    "buttons",
    "cites",
    "abstains",
    "handoff",
)
_STORY_KEYS = ("name", "description", "now", "steps")
_PAYLOAD = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ONLY_FOR_TEXT = ("intent", "entities")


class StoryFileError(UserError):
    """One or more story files are invalid; ``problems`` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(problems)
        head = f"{count} problem{'s' if count > 1 else ''} in the story files"
        super().__init__(head + ":\n" + "\n".join(f"- {p}" for p in problems))


@dataclass(frozen=True)
class Pattern:
    """A text the reply must contain: a plain substring (case-insensitive) or a regex."""

    text: str
    regex: bool = False

    def found_in(self, haystack: str) -> bool:
        if self.regex:
            return re.search(self.text, haystack) is not None
        return " ".join(self.text.split()).casefold() in " ".join(haystack.split()).casefold()

    def __str__(self) -> str:
        return f"/{self.text}/" if self.regex else repr(self.text)


@dataclass(frozen=True)
class StoryStep:
    """One customer message and what the assistant must do (``expect``, in check order).

    A step without expectations still checks that the assistant replies and, for a
    button, that the previous reply offered it.
    """

    number: int
    user: str | None
    button: str | None
    expect: Mapping[str, Any]

    @property
    def said(self) -> str:
        return f"user: {self.user!r}" if self.user is not None else f"button: {self.button}"


@dataclass(frozen=True)
class Story:
    name: str
    file: Path
    steps: tuple[StoryStep, ...]
    description: str = ""
    now: float | None = None


@dataclass
class _Problems:
    """Where we are in a file, and the problems found so far."""

    file: str
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.file}: {where}{': ' if where else ''}{message}")


def load_stories(path: str | Path) -> list[Story]:
    """Every story of a file, or of the ``*.yaml``/``*.yml`` files under a folder."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())
        if not files:
            raise StoryFileError([f"{root}: no story file (*.yaml, *.yml) in this folder"])
    elif root.is_file():
        files = [root]
    else:
        raise StoryFileError([f"{root}: no such file or folder"])
    stories: list[Story] = []
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for file in files:
        found, file_problems = _load_file(file)
        problems.extend(file_problems)
        for story in found:
            if story.name in seen:
                problems.append(
                    f"{file}: story {story.name!r}: this name is already used in "
                    f"{seen[story.name]}; give each story its own name"
                )
            seen.setdefault(story.name, file)
            stories.append(story)
    if problems:
        raise StoryFileError(problems)
    return stories


def _load_file(file: Path) -> tuple[list[Story], list[str]]:
    problems = _Problems(str(file))
    try:
        document = yaml.safe_load(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        problems.add("", "not UTF-8 text; save it as UTF-8")
        return [], problems.items
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(error, "problem", None) or "invalid YAML"
        problems.add("", f"invalid YAML{line}: {reason}")
        return [], problems.items
    if not isinstance(document, dict) or "stories" not in document:
        problems.add("", "expected a mapping with a `stories:` list at the top")
        return [], problems.items
    extra = sorted(str(k) for k in document if k != "stories")
    if extra:
        problems.add("", f"unknown top-level key {extra[0]!r} (only `stories` is allowed)")
    items = document["stories"]
    if not isinstance(items, list) or not items:
        problems.add("", "`stories` must be a non-empty list")
        return [], problems.items
    stories = []
    for index, item in enumerate(items, start=1):
        story = _story(item, index, file, problems)
        if story is not None:
            stories.append(story)
    return stories, problems.items


def _story(item: Any, index: int, file: Path, problems: _Problems) -> Story | None:
    if not isinstance(item, dict):
        problems.add(f"story #{index}", "expected a mapping with `name` and `steps`")
        return None
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add(f"story #{index}", "`name` is missing or not a non-empty string")
        return None
    where = f"story {name!r}"
    before = len(problems.items)
    for key in item:
        if key not in _STORY_KEYS:
            problems.add(where, f"unknown key {key!r} (allowed: {', '.join(_STORY_KEYS)})")
    description = item.get("description", "")
    if not isinstance(description, str):
        problems.add(where, "`description` must be a string")
    now = _moment(item.get("now"), where, problems)
    raw_steps = item.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.add(where, "`steps` must be a non-empty list")
        return None
    steps = [_step(raw, number, where, problems) for number, raw in enumerate(raw_steps, 1)]
    if len(problems.items) > before:
        return None
    return Story(
        name.strip(), file, tuple(s for s in steps if s is not None), str(description), now
    )


def _moment(value: Any, where: str, problems: _Problems) -> float | None:
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        problems.add(
            where, "`now` must be an ISO date and time with a zone, e.g. 2026-10-01T10:00Z"
        )
        return None
    return moment.astimezone(UTC).timestamp()


def _step(raw: Any, number: int, story: str, problems: _Problems) -> StoryStep | None:
    where = f"{story}, step {number}"
    if not isinstance(raw, dict):
        problems.add(where, "expected a mapping such as `user: text` or `button: payload`")
        return None
    said = [k for k in ("user", "button") if k in raw]
    if len(said) != 1:
        problems.add(where, "give exactly one of `user` (a message) or `button` (a payload)")
        return None
    value = raw[said[0]]
    user = button = None
    if said[0] == "user":
        if not isinstance(value, str) or not value.strip():
            problems.add(where, "`user` must be a non-empty string")
            return None
        user = value
    else:
        if not isinstance(value, str) or not _PAYLOAD.match(value):
            problems.add(where, "`button` must be a payload: 1 to 64 letters, digits or . _ : -")
            return None
        button = value
    expect: dict[str, Any] = {}
    for key, spec in raw.items():
        if key in ("user", "button"):
            continue
        if key not in EXPECTATIONS:
            problems.add(where, f"unknown key {key!r} (expectations: {', '.join(EXPECTATIONS)})")
        elif button is not None and key in _ONLY_FOR_TEXT:
            problems.add(where, f"`{key}` needs a `user` message (a button is not understood)")
        else:
            checked = _expectation(key, spec, f"{where}, {key}", problems)
            if checked is not _INVALID:
                expect[key] = checked
    order = {key: i for i, key in enumerate(EXPECTATIONS)}
    return StoryStep(
        number, user, button, dict(sorted(expect.items(), key=lambda kv: order[kv[0]]))
    )


_INVALID: Any = object()


def _expectation(key: str, spec: Any, where: str, problems: _Problems) -> Any:
    """The checked value of one expectation, or ``_INVALID`` after recording why."""

    def bad(message: str) -> Any:
        problems.add(where, message)
        return _INVALID

    if key in ("intent", "step"):
        return spec if _name(spec) else bad("expected a name (letters, digits, _)")
    if key == "tutorial":
        return spec if spec is None or _name(spec) else bad("expected a tutorial id or null")
    if key == "language":
        return spec if spec in ("fr", "en") else bad("expected `fr` or `en`")
    if key == "action":
        return spec if spec in ACTIONS else bad(f"expected one of {', '.join(ACTIONS)}")
    if key == "abstains":
        return spec if isinstance(spec, bool) else bad("expected true or false")
    if key in ("says", "not_says"):
        patterns = _patterns(spec)
        return patterns if isinstance(patterns, tuple) else bad(patterns)
    if key == "buttons":
        if not isinstance(spec, list) or not all(isinstance(p, str) for p in spec):
            return bad("expected a list of button payloads ([] for none)")
        return tuple(spec)
    if key == "cites":
        items = [spec] if isinstance(spec, str) else spec
        if not isinstance(items, list) or not items or not all(_text(i) for i in items):
            return bad("expected a document name or title, or a list of them")
        return tuple(items)
    if key == "entities":
        return _string_map(spec) or bad("expected a mapping of entity type to value (quoted)")
    assert key == "handoff"
    if isinstance(spec, bool):
        return {} if spec else None
    if not isinstance(spec, dict):
        return bad("expected true, false or a mapping of summary fields")
    return _handoff(spec, where, problems)


def _handoff(spec: Mapping[str, Any], where: str, problems: _Problems) -> Any:
    summary: dict[str, Any] = {}
    for field_name, value in spec.items():
        at = f"{where}.{field_name}"
        if field_name not in HANDOFF_FIELDS:
            problems.add(
                where, f"unknown field {field_name!r} (fields: {', '.join(HANDOFF_FIELDS)})"
            )
        elif field_name == "sentiment" and value not in SENTIMENTS:
            problems.add(at, f"expected one of {', '.join(SENTIMENTS)}")
        elif field_name == "entities":
            mapping = _string_map(value)
            if mapping is None:
                problems.add(at, "expected a mapping of entity or slot name to value (quoted)")
            summary[field_name] = mapping
        elif field_name == "steps_done":
            if not isinstance(value, list) or not all(_text(v) for v in value):
                problems.add(at, "expected a list of `tutorial:step` names")
            summary[field_name] = value
        elif field_name in ("intent", "tutorial") and not (value is None or _name(value)):
            problems.add(at, "expected a name or null")
        elif field_name in ("reason", "wants") and not _text(value):
            problems.add(at, "expected a non-empty string (a part of the text)")
        else:
            summary[field_name] = value
    return summary


def _patterns(spec: Any) -> tuple[Pattern, ...] | str:
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        return "expected a text, {regex: ...} or a non-empty list of them"
    patterns = []
    for item in items:
        if _text(item):
            patterns.append(Pattern(item))
        elif isinstance(item, dict) and list(item) == ["regex"] and _text(item["regex"]):
            try:
                re.compile(item["regex"])
            except re.error as error:
                return f"invalid regex {item['regex']!r}: {error}"
            patterns.append(Pattern(item["regex"], regex=True))
        else:
            return "expected a text, {regex: ...} or a non-empty list of them"
    return tuple(patterns)


def _string_map(spec: Any) -> dict[str, str] | None:
    if not isinstance(spec, dict) or not spec:
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in spec.items()):
        return None
    return dict(spec)


def _name(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[a-z0-9_]+", value) is not None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def names_in(stories: Iterable[Story], key: str) -> set[str]:
    """Every value a story expects for ``key`` (``intent``, ``tutorial`` or ``step``)."""
    return {
        str(step.expect[key])
        for s in stories
        for step in s.steps
        if step.expect.get(key) is not None
    }
