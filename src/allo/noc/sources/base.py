"""What every alarm source gives: alarms in row order, and a report of what was wrong.

A row that cannot be read is *not* dropped: it becomes an alarm of type
``malformed-input`` on device ``unknown`` (the raw text kept in its attributes), so that it
reaches an incident like any other row and an operator can see it. The report counts every
problem by kind and keeps a few examples with their row numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from allo.domain.alarms import Alarm, Severity

MALFORMED_TYPE = "malformed-input"
UNKNOWN_DEVICE = "unknown"
#: the longest id, device or alarm type a store keeps (the width of its columns)
MAX_NAME_CHARS = 255
#: the longest raw text and error message a stand-in keeps
_KEPT_CHARS = 500
#: the longest attribute value kept (X.733 additional text is a note, not a file) ...
MAX_ATTRIBUTE_CHARS = 4_096
#: ... and the most attributes kept; beyond, an alarm keeps the first ones and says so
MAX_ATTRIBUTES = 100
#: the attribute that says what was cut from an alarm's attributes
CUT_ATTRIBUTE = "allo_cut"


@dataclass
class InputReport:
    """Problems found in the input, counted by kind, with up to ``keep`` examples each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    keep: int = 5

    def add(self, kind: str, row: int, message: str) -> None:
        """Count one problem of ``kind`` at data row ``row``."""
        self.counts[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < self.keep:
            examples.append(f"row {row}: {message}")

    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, object]:
        return {"counts": dict(sorted(self.counts.items())), "examples": self.examples}


def malformed(
    row: int, raw: str, why: str, report: InputReport, alarm_id: str | None = None
) -> Alarm:
    """The stand-in alarm for a row that could not be read (counted as ``malformed``);
    its id is ``alarm_id`` when the row named a usable one, else ``row-<row>``."""
    why = _valid(why[:_KEPT_CHARS])
    report.add("malformed", row, why)
    return Alarm(
        id=alarm_id or f"row-{row}",
        device=UNKNOWN_DEVICE,
        alarm_type=MALFORMED_TYPE,
        raised_at=float("nan"),
        severity=Severity.INDETERMINATE,
        attributes={"raw": _valid(raw[:_KEPT_CHARS]), "error": why},
        row=row,
    )


def shown(value: str, limit: int = 80) -> str:
    """``value`` quoted for a message, cut after ``limit`` characters: an error names the
    bad value without echoing megabytes of it back."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def valid_unicode(value: str) -> bool:
    """Text that UTF-8 can hold: no lone surrogate, which a JSON escape such as
    ``"\\ud800"`` produces and no database accepts."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid(value: str) -> str:
    """``value`` with any lone surrogate written as its escape (``\\ud800``)."""
    if valid_unicode(value):
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def unstorable(alarm: Alarm) -> str | None:
    """Why ``alarm`` cannot be stored as it is, or ``None``: a name longer than its column
    (a store would cut it, and two ids would become one), or text that is not valid
    Unicode (the write would fail, and with it every alarm of the same transaction)."""
    for name, value in (
        ("id", alarm.id),
        ("device", alarm.device),
        ("alarm_type", alarm.alarm_type),
    ):
        if len(value) > MAX_NAME_CHARS:
            return (
                f"{name} of {len(value)} characters: at most {MAX_NAME_CHARS}; send a shorter one"
            )
        if not valid_unicode(value):
            return f"{name} is not valid Unicode (a lone surrogate); send UTF-8 text"
    for key, value in alarm.attributes.items():
        if not (valid_unicode(key) and valid_unicode(value)):
            return f"attribute {shown(key)} is not valid Unicode (a lone surrogate)"
    return None


def _stand_in_id(alarm_id: str) -> str:
    """A storable id for an alarm whose own id is not: the same text made valid and cut,
    with a digest of the original, so that a resent alarm is recognised and two
    different ids stay two."""
    if len(alarm_id) <= MAX_NAME_CHARS and valid_unicode(alarm_id):
        return alarm_id
    original = alarm_id.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(original, digest_size=8).hexdigest()
    return f"{_valid(alarm_id)[:200]}#{digest}"


def screened(alarms: Sequence[Alarm], report: InputReport) -> Sequence[Alarm]:
    """``alarms`` with each one that cannot be stored (:func:`unstorable`) replaced by a
    ``malformed-input`` stand-in that keeps what it said (never dropped), and attributes
    too large to show cut (:func:`bounded`)."""
    kept: list[Alarm] | None = None
    limit = MAX_NAME_CHARS
    for index, alarm in enumerate(alarms):
        alarm_id, device, kind = alarm.id, alarm.device, alarm.alarm_type
        if (  # the common alarm, in one test and no call: every alarm of a stream is here
            len(alarm_id) <= limit
            and len(device) <= limit
            and len(kind) <= limit
            and (alarm_id + device + kind).isascii()
            and not alarm.attributes
        ):
            continue
        checked = storable(alarm, report)
        if checked is alarm:
            continue
        if kept is None:
            kept = list(alarms)
        kept[index] = checked
    return alarms if kept is None else kept


def storable(alarm: Alarm, report: InputReport) -> Alarm:
    """``alarm``, its stand-in when it cannot be stored, or itself with its attributes cut
    when they are too large (see :func:`screened`)."""
    why = unstorable(alarm)
    return bounded(alarm, report) if why is None else stand_in(alarm, why, report)


def bounded(alarm: Alarm, report: InputReport) -> Alarm:
    """``alarm`` with at most :data:`MAX_ATTRIBUTES` attributes, each value at most
    :data:`MAX_ATTRIBUTE_CHARS` characters and each name at most :data:`MAX_NAME_CHARS`;
    what was cut is counted (``attributes_cut``) and said in :data:`CUT_ATTRIBUTE`, which
    counts among the attributes, so that a cut alarm passes again unchanged.

    Why cut rather than refuse: the alarm's type, device and time are what the pipeline
    folds and what an operator needs; a megabyte of additional text would be stored,
    sent to every console and shown whole, and only the body limit (10 MB) bounded it.
    """
    attributes = alarm.attributes
    if len(attributes) <= MAX_ATTRIBUTES and all(
        len(key) <= MAX_NAME_CHARS and len(value) <= MAX_ATTRIBUTE_CHARS
        for key, value in attributes.items()
    ):
        return alarm
    kept: dict[str, str] = {CUT_ATTRIBUTE: ""}  # its place first: a sender's own is renamed
    notes: list[str] = []
    items = list(attributes.items())
    for key, value in items[: MAX_ATTRIBUTES - 1]:
        name = _free_name(key[:MAX_NAME_CHARS], kept)
        if len(value) > MAX_ATTRIBUTE_CHARS:
            notes.append(
                f"{shown(name, 40)}: {len(value)} characters, cut to {MAX_ATTRIBUTE_CHARS}"
            )
        if name != key:
            notes.append(f"name {shown(key, 40)} ({len(key)} characters) kept as {shown(name, 40)}")
        kept[name] = value[:MAX_ATTRIBUTE_CHARS]
    if len(items) > MAX_ATTRIBUTES - 1:
        left = len(items) - (MAX_ATTRIBUTES - 1)
        notes.append(f"{left} attributes beyond the first {MAX_ATTRIBUTES - 1} left out")
    summary = "; ".join(notes)
    kept[CUT_ATTRIBUTE] = summary[:MAX_ATTRIBUTE_CHARS]
    report.add("attributes_cut", alarm.row, summary[:_KEPT_CHARS])
    return replace(alarm, attributes=kept)


def _free_name(name: str, taken: Mapping[str, str]) -> str:
    """``name``, or ``name~2``, ``~3``... (cut to fit) when an attribute has it already."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        suffix = f"~{number}"
        candidate = name[: MAX_NAME_CHARS - len(suffix)] + suffix
    return candidate


def stand_in(alarm: Alarm, why: str, report: InputReport) -> Alarm:
    """The ``malformed-input`` stand-in of an alarm that cannot be stored as it is."""
    raw = json.dumps(  # ASCII, so a lone surrogate is kept as its escape
        {
            "id": alarm.id,
            "device": alarm.device,
            "alarm_type": alarm.alarm_type,
            "attributes": dict(alarm.attributes),
        }
    )
    return malformed(alarm.row, raw, why, report, _stand_in_id(alarm.id))


@runtime_checkable
class AlarmSource(Protocol):
    """Anything that yields alarms with their 0-based data-row index, and reports problems."""

    report: InputReport

    def __iter__(self) -> Iterator[Alarm]:
        """Alarms in input order; ``alarm.row`` counts data rows from 0."""
        ...


def text(value: object) -> str:
    """A cell or JSON value as stripped text (``None`` becomes empty)."""
    return "" if value is None else str(value).strip()


def attributes_of(data: Mapping[str, object], skip: set[str]) -> dict[str, str]:
    """Every field not mapped to the alarm model, kept as a free attribute."""
    return {str(k): text(v) for k, v in data.items() if k not in skip and v not in (None, "")}
