"""Alarms and incidents, the records of the NOC engine.

The alarm follows the spirit of ITU-T X.733: a managed object (the device) reports an
alarm type (probable cause) with a perceived severity, raised at one time and possibly
cleared later, with free attributes. An incident is what an operator handles instead:
one head (the probable root alarm), every other alarm folded under it *with the reason*,
so that nothing is ever dropped, only folded.

These records import nothing of the project; they are frozen so that a stage can never
change an alarm behind another stage's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """X.733 perceived severity (``cleared`` is expressed by ``cleared_at`` instead)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INDETERMINATE = "indeterminate"


class FoldReason(StrEnum):
    """Why an alarm sits under an incident's head instead of being handled on its own."""

    DUPLICATE = "duplicate"  # same id, or same type on the same device while still active
    FLAPPING = "flapping"  # raised again and again after clearing
    TRANSIENT = "transient"  # cleared by itself within seconds
    INHIBITED = "inhibited"  # an inhibition rule: a source alarm masks it
    CAUSED = "caused"  # the learned causal graph names an earlier alarm as its cause
    ROOT = "root"  # a probable root of its own, kept in the incident's ``roots``
    GROUPED = "grouped"  # near the head in time and topology, no stronger reason


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm as received: ``row`` is its 0-based data-row index in the source."""

    id: str
    device: str
    alarm_type: str
    raised_at: float
    cleared_at: float | None = None
    severity: Severity = Severity.INDETERMINATE
    attributes: Mapping[str, str] = field(default_factory=dict)
    row: int = -1

    @property
    def duration(self) -> float | None:
        """Seconds between raise and clear, ``None`` while still active."""
        return None if self.cleared_at is None else self.cleared_at - self.raised_at


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence for an incident's probable root, in French and English."""

    kind: str  # "causal", "topology", "timing", "repeat"
    fr: str
    en: str


@dataclass(frozen=True, slots=True)
class Member:
    """An alarm folded into an incident, the reason, and the alarm it was folded under."""

    alarm: Alarm
    reason: FoldReason
    folded_under: int | None = None  # row of the alarm it points to, when there is one
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    """What an operator handles: a head alarm and everything folded under it.

    ``roots`` are further alarms of the incident that look like causes of their own
    (no learned cause nearby); they stay in ``members`` too.
    """

    id: str
    head: Alarm
    members: tuple[Member, ...]
    roots: tuple[Alarm, ...]
    devices: tuple[str, ...]
    evidence: tuple[Evidence, ...] = ()

    @property
    def size(self) -> int:
        """Alarms in the incident, head included."""
        return 1 + len(self.members)

    @property
    def started_at(self) -> float:
        """Raise time of the incident's first alarm."""
        return min([self.head.raised_at, *(m.alarm.raised_at for m in self.members)])

    def rows(self) -> list[int]:
        """Every source row of the incident, head first."""
        return [self.head.row, *(m.alarm.row for m in self.members)]
