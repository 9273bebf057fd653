"""The generic JSON API payload: ``{"alarms": [{...}, ...]}`` or a bare list of objects.

A pure function, so that the HTTP route, the broker consumer and the tests share it. Bad
items become malformed stand-ins, counted in the report, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.sources.base import InputReport, malformed
from allo.noc.sources.fields import alarm_from_fields


def parse_alarm_payload(body: object, report: InputReport, first_row: int = 0) -> list[Alarm]:
    """Alarms of one request body; raises only when the body is not a list of items at all."""
    items = body.get("alarms") if isinstance(body, Mapping) else body
    if not isinstance(items, list):
        raise InvalidInputError('expected {"alarms": [...]} or a JSON list of alarm objects')
    alarms: list[Alarm] = []
    for offset, item in enumerate(items):
        row = first_row + offset
        raw = json.dumps(item, default=str)[:500]
        if not isinstance(item, Mapping):
            alarms.append(malformed(row, raw, "expected a JSON object", report))
            continue
        try:
            alarms.append(alarm_from_fields(item, row, f"row-{row}"))
        except InvalidInputError as exc:
            alarms.append(malformed(row, raw, str(exc), report))
    return alarms
