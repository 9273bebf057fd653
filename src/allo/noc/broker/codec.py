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
_SEVERITIES: dict[object, Severity] = {s.value: s for s in Severity}
_decode = json.JSONDecoder().decode
# one encoder for every alarm: ``json.dumps`` with options builds a new one per call
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
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
    return _encode(data)


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
        # bytes decoded as UTF-8 here: json.loads would first guess their encoding
        data = _decode(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
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


def _text_field(value: Any) -> str | None:
    """A non-empty string without surrounding spaces (what the field mapping accepts as
    it is), else ``None``."""
    if type(value) is not str or not value or value[0].isspace() or value[-1].isspace():
        return None
    return value


def _time_field(value: Any) -> float | None:
    """A finite number (not a boolean) as a float, else ``None``."""
    kind = type(value)
    if kind is not float and kind is not int:
        return None
    return float(value) if math.isfinite(value) else None


def _canonical(data: dict[str, Any]) -> Alarm | None:
    """The publisher's own shape, taken as it is (a consumer would spend most of its
    decoding time in the general field mapping otherwise); ``None`` for anything else,
    which then goes through :func:`alarm_from_fields` and gets the very same checks.
    Every alarm of a stream passes here, so it reads each field once, with exact type
    tests (``type(x) is ...``: a ``bool`` is not taken for a number)."""
    if not _CANONICAL.issuperset(data):
        return None
    get = data.get
    alarm_id, device = _text_field(get("id")), _text_field(get("device"))
    kind, raised = _text_field(get("alarm_type")), _time_field(get("raised_at"))
    if alarm_id is None or device is None or kind is None or raised is None:
        return None
    cleared_value = get("cleared_at")
    cleared = None if cleared_value is None else _time_field(cleared_value)
    if cleared is None and cleared_value is not None:
        return None
    severity_value = get("severity", "indeterminate")
    severity = _SEVERITIES.get(severity_value) if type(severity_value) is str else None
    row = get("row", -1)
    if severity is None or type(row) is not int:
        return None
    attributes = get("attributes")
    if attributes is None:
        attributes = {}
    elif type(attributes) is not dict or not all(type(v) is str for v in attributes.values()):
        return None
    return Alarm(alarm_id, device, kind, raised, cleared, severity, attributes, row)
