"""The Prometheus Alertmanager webhook payload (version 4), as a pure function.

Mapping: ``labels.alertname`` is the alarm type; the device is the first of the labels
``device``, ``instance``, ``node``, ``host``, ``job``; ``fingerprint`` is the id (so a
re-sent alert is recognised as a duplicate); ``startsAt`` is the raise time and
``endsAt`` the clear time only when the alert is ``resolved`` (Alertmanager sets a future
``endsAt`` on firing alerts and ``0001-01-01T00:00:00Z`` when unknown). The other labels
and the annotations are kept as attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.sources.base import InputReport, malformed, text
from allo.noc.sources.fields import severity, timestamp

DEVICE_LABELS = ("device", "instance", "node", "host", "job")
_ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_alertmanager(payload: object, report: InputReport, first_row: int = 0) -> list[Alarm]:
    """Alarms of one webhook call; raises only when ``alerts`` is missing altogether."""
    alerts = payload.get("alerts") if isinstance(payload, Mapping) else None
    if not isinstance(alerts, list):
        raise InvalidInputError(
            'not an Alertmanager webhook payload: expected an object with an "alerts" list'
        )
    out: list[Alarm] = []
    for offset, alert in enumerate(alerts):
        row = first_row + offset
        raw = json.dumps(alert, default=str)[:500]
        try:
            out.append(_alert(alert, row))
        except InvalidInputError as exc:
            out.append(malformed(row, raw, str(exc), report))
    return out


def _alert(alert: object, row: int) -> Alarm:
    if not isinstance(alert, Mapping):
        raise InvalidInputError("an alert must be a JSON object")
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    if not isinstance(labels, Mapping) or not isinstance(annotations, Mapping):
        raise InvalidInputError("labels and annotations must be objects")
    alarm_type = text(labels.get("alertname"))
    device = next((text(labels[k]) for k in DEVICE_LABELS if text(labels.get(k))), "")
    starts = text(alert.get("startsAt"))
    if not alarm_type or not device or not starts or starts == _ZERO_TIME:
        raise InvalidInputError("an alert needs labels.alertname, a device label and startsAt")
    ends = text(alert.get("endsAt"))
    resolved = text(alert.get("status")) == "resolved" and ends and ends != _ZERO_TIME
    attributes = {
        f"label.{k}": text(v) for k, v in labels.items() if k not in {"alertname", "severity"}
    }
    attributes.update({f"annotation.{k}": text(v) for k, v in annotations.items()})
    if alert.get("generatorURL"):
        attributes["generator_url"] = text(alert.get("generatorURL"))
    fingerprint = text(alert.get("fingerprint"))
    raised = timestamp(starts, "startsAt")
    return Alarm(
        id=f"{fingerprint}@{starts}" if fingerprint else f"row-{row}",
        device=device,
        alarm_type=alarm_type,
        raised_at=raised,
        cleared_at=timestamp(ends, "endsAt") if resolved else None,
        severity=severity(text(labels.get("severity"))),
        attributes=attributes,
        row=row,
    )
