"""Small builders shared by the NOC tests."""

from __future__ import annotations

from allo.domain.alarms import Alarm


def alarm(
    row: int,
    kind: str,
    device: str,
    raised: float,
    cleared: float | None = None,
    alarm_id: str | None = None,
) -> Alarm:
    return Alarm(
        alarm_id or f"row-{row}",
        device,
        kind,
        raised,
        raised if cleared is None else cleared,
        row=row,
    )
