"""What every alarm source gives: alarms in row order, and a report of what was wrong.

A row that cannot be read is *not* dropped: it becomes an alarm of type
``malformed-input`` on device ``unknown`` (the raw text kept in its attributes), so that it
reaches an incident like any other row and an operator can see it. The report counts every
problem by kind and keeps a few examples with their row numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from allo.domain.alarms import Alarm, Severity

MALFORMED_TYPE = "malformed-input"
UNKNOWN_DEVICE = "unknown"


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


def malformed(row: int, raw: str, why: str, report: InputReport) -> Alarm:
    """The stand-in alarm for a row that could not be read (counted as ``malformed``)."""
    report.add("malformed", row, why)
    return Alarm(
        id=f"row-{row}",
        device=UNKNOWN_DEVICE,
        alarm_type=MALFORMED_TYPE,
        raised_at=float("nan"),
        severity=Severity.INDETERMINATE,
        attributes={"raw": raw[:500], "error": why},
        row=row,
    )


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
