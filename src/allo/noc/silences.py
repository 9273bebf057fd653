"""Silences and maintenance windows: what operators say about the near future.

A *silence* (as in Alertmanager) mutes incidents whose head alarm matches all of its
label matchers while it is active; it is time-bounded and never changes the incidents
themselves. A *maintenance window* names a set of devices and a time window: alarms
raised on those devices inside it are folded, with reason ``maintenance``, into one
incident per window instead of reaching the pipeline. Both are pure records here; the
store keeps them and the engine applies them.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError

MAX_SILENCE_SECONDS = 366 * 86400.0
OPERATORS = ("=", "!=", "=~", "!~")
_FIELDS = {"device", "alarm_type", "severity", "id"}
# ``label.<name>``: an Alertmanager label; these two are fields of the alarm itself
_LABEL_FIELDS = {"alertname": "alarm_type", "severity": "severity"}
LABEL_PREFIX = "label."
MAX_NAME_CHARS = 200
MAX_REGEX_CHARS = 256  # a matcher's regex, as written
MAX_REGEX_REPEATS = 2  # quantifiers (*, +, {m,n}) in one regex, none inside another
REGEX_SUBJECT_CHARS = 1024  # a regex reads at most this much of a value
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f]")
_parser: Any = importlib.import_module("re._parser")  # the stdlib's own regex parser


def check_regex(pattern: str, where: str) -> re.Pattern[str]:
    """Compile a matcher's regex, refusing what could make matching slow.

    Python's ``re`` backtracks, so some patterns take exponential time on some values
    (``(a+)+b``); Alertmanager's Go engine has no such case. A matcher's regex is
    therefore kept to a safe subset: at most 256 characters, at most two quantifiers
    with none applied to a group that holds a quantifier or an alternation, and no
    back-reference or look-around. With values read up to 1,024 characters, the worst
    case stays around a million steps (a millisecond), whatever the value.
    """
    if len(pattern) > MAX_REGEX_CHARS:
        raise InvalidInputError(
            f"{where}: regex of {len(pattern)} characters; at most {MAX_REGEX_CHARS}"
        )
    try:
        compiled = re.compile(pattern)
        tree = _parser.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:  # a{4294967295}: OverflowError
        raise InvalidInputError(f"{where}: bad regex ({exc}); escape special characters") from exc
    repeats = _walk(tree, where, inside_repeat=False)
    if repeats > MAX_REGEX_REPEATS:
        raise InvalidInputError(
            f"{where}: {repeats} quantifiers (*, +, ?, {{m,n}}); use at most "
            f"{MAX_REGEX_REPEATS}, e.g. 'db-.*' or '.*-paris-.*'"
        )
    return compiled


def _walk(items: Any, where: str, *, inside_repeat: bool) -> int:
    """Quantifiers in a parsed pattern; raises on a construct outside the safe subset."""
    count = 0
    for op, argument in items:
        name = str(op)
        if name in {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}:
            low, high, sub = argument
            if high != low:  # a fixed count ({3}) is a plain sequence, not a choice
                if inside_repeat:
                    raise InvalidInputError(
                        f"{where}: a quantifier inside a repeated group (like '(a+)+') can "
                        "take exponential time; flatten it"
                    )
                count += 1
            inner = _walk(sub, where, inside_repeat=inside_repeat or high != low)
            count += inner * (low if high == low else 1)  # (a+){3} is a+a+a+
        elif name == "SUBPATTERN":
            count += _walk(argument[-1], where, inside_repeat=inside_repeat)
        elif name == "ATOMIC_GROUP":
            count += _walk(argument, where, inside_repeat=inside_repeat)
        elif name == "BRANCH":
            if inside_repeat:
                raise InvalidInputError(
                    f"{where}: an alternation inside a repeated group (like '(a|ab)*') can "
                    "take exponential time; list the values instead"
                )
            count += sum(_walk(b, where, inside_repeat=False) for b in argument[1])
        elif name in {"GROUPREF", "GROUPREF_EXISTS", "ASSERT", "ASSERT_NOT"}:
            raise InvalidInputError(
                f"{where}: back-references and look-arounds are not supported in matchers"
            )
    return count


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value``, as Alertmanager's matchers.

    ``name`` is a field (``device``, ``alarm_type``, ``severity``, ``id``), an Alertmanager
    label (``label.instance``: the alarm's attribute ``label.instance``, else its attribute
    ``instance``; ``label.alertname`` and ``label.severity`` are the alarm's type and
    severity) or any other attribute by its key (``site``). A missing attribute reads as
    the empty string, as a missing label does in Alertmanager. ``=~`` and ``!~`` take a
    full-match regex from a safe subset (see :func:`check_regex`).
    """

    name: str
    value: str
    op: str = "="
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise InvalidInputError(
                "a matcher needs a name: device, alarm_type, severity, id or label.<name>"
            )
        if len(self.name) > MAX_NAME_CHARS or _BAD_NAME.search(self.name):
            raise InvalidInputError(
                f"matcher name {self.name[:40]!r}: at most {MAX_NAME_CHARS} printable characters"
            )
        if self.name == LABEL_PREFIX.rstrip(".") or self.name == LABEL_PREFIX:
            raise InvalidInputError("matcher name 'label.': name the label, e.g. label.instance")
        if self.op not in OPERATORS:
            raise InvalidInputError(f"matcher operator {self.op!r}: use one of {OPERATORS}")
        if self.op in {"=~", "!~"}:
            compiled = check_regex(self.value, f"matcher {self.name}")
            object.__setattr__(self, "_regex", compiled)

    def actual(self, alarm: Alarm) -> str:
        """The value this matcher reads from ``alarm``."""
        name = self.name
        if name in _FIELDS:
            return self._field(alarm, name)
        attributes = alarm.attributes
        if name.startswith(LABEL_PREFIX):
            label = name[len(LABEL_PREFIX) :]
            if label in _LABEL_FIELDS:
                return self._field(alarm, _LABEL_FIELDS[label])
            found = attributes.get(name)
            return str(found) if found is not None else str(attributes.get(label, ""))
        return str(attributes.get(name, ""))

    @staticmethod
    def _field(alarm: Alarm, name: str) -> str:
        value = getattr(alarm, name)
        return str(getattr(value, "value", value))

    @property
    def reads_attributes(self) -> bool:
        """Whether matching needs the alarm's attributes (not only its fields)."""
        return self.name not in _FIELDS and self.name[len(LABEL_PREFIX) :] not in _LABEL_FIELDS

    def matches(self, alarm: Alarm) -> bool:
        actual = self.actual(alarm)
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual[:REGEX_SUBJECT_CHARS]) is not None
        return found if self.op == "=~" else not found

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Matcher:
        return cls(str(data.get("name", "")), str(data.get("value", "")), str(data.get("op", "=")))


def _window(starts_at: float, ends_at: float, what: str) -> None:
    if not (math.isfinite(starts_at) and math.isfinite(ends_at)):
        raise InvalidInputError(f"{what}: starts_at and ends_at must be finite epoch seconds")
    if ends_at <= starts_at:
        raise InvalidInputError(f"{what}: ends_at must be after starts_at")
    if ends_at - starts_at > MAX_SILENCE_SECONDS:
        raise InvalidInputError(f"{what}: at most 366 days long")


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""
    created_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.matchers:
            raise InvalidInputError("a silence needs at least one matcher")
        _window(self.starts_at, self.ends_at, "silence")

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: float) -> str:
        """``pending``, ``active`` or ``expired``, as Alertmanager says."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def matches(self, alarm: Alarm) -> bool:
        return all(m.matches(alarm) for m in self.matchers)

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "id": self.id,
            "matchers": [m.to_json() for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": self.created_at,
            "state": self.state(now),
        }


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    id: str
    devices: frozenset[str]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""
    created_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.devices:
            raise InvalidInputError("a maintenance window needs at least one device")
        _window(self.starts_at, self.ends_at, "maintenance window")

    def covers(self, alarm: Alarm) -> bool:
        """The alarm was raised on one of the devices inside the window (event time)."""
        return alarm.device in self.devices and self.starts_at <= alarm.raised_at <= self.ends_at

    def state(self, now: float) -> str:
        if now < self.starts_at:
            return "pending"
        return "active" if now <= self.ends_at else "expired"

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "id": self.id,
            "devices": sorted(self.devices),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": self.created_at,
            "state": self.state(now),
        }


def window_for(alarm: Alarm, windows: Sequence[MaintenanceWindow]) -> MaintenanceWindow | None:
    """The first window covering ``alarm``, if any."""
    for window in windows:
        if window.covers(alarm):
            return window
    return None
