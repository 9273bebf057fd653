"""Silences and maintenance windows: what operators say about the near future.

A *silence* (as in Alertmanager) mutes incidents whose head alarm matches all of its
label matchers while it is active; it is time-bounded and never changes the incidents
themselves. A *maintenance window* names a set of devices and a time window: alarms
raised on those devices inside it are folded, with reason ``maintenance``, into one
incident per window instead of reaching the pipeline. Both are pure records here; the
store keeps them and the engine applies them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError

MAX_SILENCE_SECONDS = 366 * 86400.0
OPERATORS = ("=", "!=", "=~", "!~")
_FIELDS = {"device", "alarm_type", "severity", "id"}


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value``: ``name`` is ``device``, ``alarm_type``, ``severity``, ``id`` or an
    attribute (``label.instance``, ``site``, ...); ``=~`` and ``!~`` take a full-match regex."""

    name: str
    value: str
    op: str = "="

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInputError("a matcher needs a name (device, alarm_type, label.x, ...)")
        if self.op not in OPERATORS:
            raise InvalidInputError(f"matcher operator {self.op!r}: use one of {OPERATORS}")
        if self.op in {"=~", "!~"}:
            try:
                re.compile(self.value)
            except re.error as exc:
                raise InvalidInputError(f"matcher {self.name}: bad regex ({exc})") from exc

    def matches(self, alarm: Alarm) -> bool:
        if self.name in _FIELDS:
            actual = str(getattr(alarm, self.name))
        else:
            actual = alarm.attributes.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
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
