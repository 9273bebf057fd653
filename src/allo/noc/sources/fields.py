"""Turning loosely named fields (CSV columns, JSON keys) into an :class:`Alarm`.

One mapping serves CSV, JSON lines and the generic JSON API so that a field accepted by
one is accepted by all. Timestamps are seconds since the epoch or ISO 8601 (a naive one is
taken as UTC). ``InvalidInputError`` says exactly which field is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from allo.domain.alarms import Alarm, Severity
from allo.errors import InvalidInputError
from allo.noc.sources.base import attributes_of, shown, text

ID_KEYS = ("id", "alarm_uid", "uid", "fingerprint", "event_id")
DEVICE_KEYS = ("device", "device_id", "managed_object", "node", "host", "instance", "ne")
TYPE_KEYS = ("alarm_type", "type", "probable_cause", "alertname", "event_type", "name")
RAISED_KEYS = ("raised_at", "start_timestamp", "start", "startsAt", "timestamp", "time")
CLEARED_KEYS = ("cleared_at", "end_timestamp", "end", "endsAt", "cleared")
SEVERITY_KEYS = ("severity", "perceived_severity", "priority")
ALL_KEYS = {*ID_KEYS, *DEVICE_KEYS, *TYPE_KEYS, *RAISED_KEYS, *CLEARED_KEYS, *SEVERITY_KEYS}

_SEVERITIES = {
    "critical": Severity.CRITICAL,
    "crit": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "major": Severity.MAJOR,
    "error": Severity.MAJOR,
    "high": Severity.MAJOR,
    "minor": Severity.MINOR,
    "medium": Severity.MINOR,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "low": Severity.WARNING,
    "info": Severity.WARNING,
}


def first(data: Mapping[str, object], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = text(data.get(key))
        if value:
            return value
    return ""


def timestamp(value: str, field_name: str) -> float:
    """Seconds since the epoch from a number or an ISO 8601 string."""
    try:
        number = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInputError(
                f"{field_name} {shown(value)} is neither seconds since the epoch nor ISO 8601"
            ) from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(number):
        raise InvalidInputError(f"{field_name} {shown(value)} is not a finite number")
    return number


def severity(value: str) -> Severity:
    return (
        _SEVERITIES.get(value.lower(), Severity.INDETERMINATE) if value else Severity.INDETERMINATE
    )


def alarm_from_fields(data: Mapping[str, object], row: int, default_id: str) -> Alarm:
    """An alarm from a mapping of named fields; raises ``InvalidInputError`` when unusable."""
    device = first(data, DEVICE_KEYS)
    alarm_type = first(data, TYPE_KEYS)
    raised = first(data, RAISED_KEYS)
    missing = [
        name
        for name, value in (("device", device), ("alarm_type", alarm_type), ("raised_at", raised))
        if not value
    ]
    if missing:
        raise InvalidInputError(f"missing {', '.join(missing)}")
    cleared = first(data, CLEARED_KEYS)
    return Alarm(
        id=first(data, ID_KEYS) or default_id,
        device=device,
        alarm_type=alarm_type,
        raised_at=timestamp(raised, "raised_at"),
        cleared_at=timestamp(cleared, "cleared_at") if cleared else None,
        severity=severity(first(data, SEVERITY_KEYS)),
        attributes=attributes_of(data, ALL_KEYS),
        row=row,
    )
