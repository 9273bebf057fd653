"""Alarms as stream entries: one field ``alarm`` holding the alarm as a JSON object.

The publisher writes the alarm model's own names (``id, device, alarm_type, raised_at,
cleared_at, severity, attributes, row``); the consumer reads them through the shared field
mapping of :mod:`allo.noc.sources.fields`, so another producer may write its own JSON with
the usual synonyms (``host``, ``alertname``, ``startsAt``...). A stand-in for a malformed
source row (raise time unknown) travels with ``raised_at: null`` and comes back as such.

An entry that cannot become an alarm raises :class:`MalformedEntry` with the reason; the
consumer keeps it in the dead-letter stream instead of dropping it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from allo.domain.alarms import Alarm, Severity
from allo.errors import InvalidInputError
from allo.noc.broker.streams import text
from allo.noc.sources.base import MALFORMED_TYPE, UNKNOWN_DEVICE
from allo.noc.sources.fields import alarm_from_fields

FIELD = "alarm"
_CANONICAL = frozenset(
    ("id", "device", "alarm_type", "raised_at", "cleared_at", "severity", "row", "attributes")
)
_SEVERITIES = {s.value: s for s in Severity}
MAX_ENTRY_BYTES = 64 * 1024


class MalformedEntry(ValueError):  # noqa: N818 - a verdict on an entry, caught by the consumer
    """A stream entry that is not an alarm; the message says why."""


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def encode_alarm(alarm: Alarm) -> str:
    """The JSON text of an alarm (compact; non-finite times written as ``null``)."""
    data: dict[str, Any] = {
        "id": alarm.id,
        "device": alarm.device,
        "alarm_type": alarm.alarm_type,
        "raised_at": _number(alarm.raised_at),
        "cleared_at": _number(alarm.cleared_at),
        "severity": alarm.severity.value,
        "row": alarm.row,
    }
    if alarm.attributes:
        data["attributes"] = dict(alarm.attributes)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def entry_fields(fields: Mapping[Any, Any] | None) -> dict[str, str]:
    """An entry's fields as text (bytes decoded, undecodable bytes replaced), for keeping."""
    return {text(k): text(v) for k, v in (fields or {}).items()}


def decode_alarm(fields: Mapping[Any, Any] | None, default_id: str) -> Alarm:
    """The alarm of one entry; ``default_id`` (made from the entry id) when it names none."""
    if not fields:  # XADD needs a field: an empty entry is one trimmed away before reading
        raise MalformedEntry("the entry was deleted from the stream before it was processed")
    raw = fields.get(FIELD, fields.get(FIELD.encode()))
    if raw is None:
        names = ", ".join(sorted(entry_fields(fields))[:5]) or "none"
        raise MalformedEntry(f"no {FIELD!r} field (fields: {names})")
    if len(raw) > MAX_ENTRY_BYTES:
        raise MalformedEntry(f"the alarm is {len(raw)} bytes, over {MAX_ENTRY_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEntry(f"the {FIELD!r} field is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedEntry(f"the {FIELD!r} field is JSON but not an object")
    fast = _canonical(data)
    if fast is not None:
        return fast
    row = data.pop("row", -1)
    row = row if isinstance(row, int) and not isinstance(row, bool) else -1
    attributes = data.pop("attributes", None)
    extra = (
        {str(k): "" if v is None else str(v) for k, v in attributes.items()}
        if isinstance(attributes, dict)
        else {}
    )
    if data.get("alarm_type") == MALFORMED_TYPE and data.get("raised_at") is None:
        return Alarm(
            id=str(data.get("id") or default_id),
            device=str(data.get("device") or UNKNOWN_DEVICE),
            alarm_type=MALFORMED_TYPE,
            raised_at=float("nan"),
            attributes=extra,
            row=row,
        )
    try:
        alarm = alarm_from_fields(data, row, default_id)
    except InvalidInputError as exc:
        raise MalformedEntry(str(exc)) from exc
    if extra:  # the publisher's nested attributes, next to any loose field kept as one
        alarm = replace(alarm, attributes={**alarm.attributes, **extra})
    return alarm


def _text_field(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value and value.strip() == value else None


def _time_field(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _canonical(data: dict[str, Any]) -> Alarm | None:
    """The publisher's own shape, taken as it is (a consumer would spend most of its
    decoding time in the general field mapping otherwise); ``None`` for anything else,
    which then goes through :func:`alarm_from_fields` and gets the very same checks."""
    if not _CANONICAL.issuperset(data):
        return None
    alarm_id, device = _text_field(data, "id"), _text_field(data, "device")
    kind, raised = _text_field(data, "alarm_type"), _time_field(data, "raised_at")
    if alarm_id is None or device is None or kind is None or raised is None:
        return None
    cleared = _time_field(data, "cleared_at")
    if cleared is None and data.get("cleared_at") is not None:
        return None
    severity = _SEVERITIES.get(str(data.get("severity", "indeterminate")))
    row = data.get("row", -1)
    attributes = data.get("attributes", {})
    if severity is None or isinstance(row, bool) or not isinstance(row, int):
        return None
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        return None
    return Alarm(alarm_id, device, kind, raised, cleared, severity, attributes, row)
