"""The incidents of maintenance windows: one per window and stream, closed when it ends.

An alarm raised on a device under maintenance never reaches the pipeline: it is folded,
with reason ``maintenance``, into its window's own incident ``<stream>-mw-<window id>``.
That incident is ``open`` while the window lasts and ``closed`` once the engine's clock
has passed the window's end (or the window was deleted), so the console's live list
empties by itself after the work. A closed incident never reopens: an alarm that
arrives late but was raised inside the window is still folded into it, and it stays
closed. That is what keeps a replay of past alarms stable (reopening on each late alarm
and closing again on the next check would make the incident flip back and forth).

The incidents met since start-up are kept in memory (one per window: few), the open ones
loaded back from the store on start-up; a closed one is read from the store only when a
late alarm comes for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from allo.domain.alarms import Alarm, Evidence, Severity
from allo.errors import NotFoundError
from allo.noc.silences import MaintenanceWindow
from allo.noc.store import MAX_PAGE, AlarmRecord, IncidentQuery, IncidentRecord, NocStore

KIND = "maintenance"


def window_evidence(window: MaintenanceWindow) -> tuple[Evidence, ...]:
    """Why the alarms of a window were folded, in French and English."""
    devices = ", ".join(sorted(window.devices)[:10])
    return (
        Evidence(
            "maintenance",
            f"Alarmes levées pendant la fenêtre de maintenance {window.id} "
            f"({devices}) : regroupées sans intervention.",
            f"Alarms raised during maintenance window {window.id} ({devices}): "
            "folded, no action needed.",
        ),
    )


def _record_of(data: dict[str, Any]) -> IncidentRecord:
    """A stored maintenance incident (as the store's detail view gives it) as a record."""
    head = data["head"]
    return IncidentRecord(
        data["id"],
        data["stream"],
        KIND,
        data["state"],
        Alarm(
            head["id"],
            head["device"],
            head["alarm_type"],
            data["started_at"],
            severity=Severity(data["severity"]),
            row=head["row"],
        ),
        data["started_at"],
        data["last_at"],
        data["size"],
        tuple(data["devices"]),
        folded=dict(data["folded"]),
        evidence=tuple(Evidence(e["kind"], e["fr"], e["en"]) for e in data.get("evidence", [])),
        updated_at=data["updated_at"] or 0.0,
    )


class MaintenanceIncidents:
    """Folds alarms into their window's incident and closes the incidents of ended windows.

    Not thread-safe on its own: the engine calls it under its lock."""

    def __init__(self, store: NocStore, stream: str) -> None:
        self.store = store
        self.stream = stream
        self.prefix = f"{stream}-mw-"
        self._latest: dict[str, IncidentRecord] = {}  # incident id -> its latest record
        self._open: set[str] = set()  # ... of those, the open ones

    def incident_id(self, window_id: str) -> str:
        return f"{self.prefix}{window_id}"

    def load(self) -> None:
        """Read back the open incidents of this stream's windows (at start-up)."""
        query = IncidentQuery(state="open", kind=KIND, stream=self.stream)
        ids: list[str] = []
        total, offset = 1, 0
        while offset < total:
            total, page = self.store.list_incidents(query, offset=offset, limit=MAX_PAGE)
            ids += [item["id"] for item in page]
            offset += MAX_PAGE
        for data in self.store.incidents_by_id(ids, detail=True):
            self._latest[data["id"]] = _record_of(data)
            self._open.add(data["id"])

    def fold(self, record: AlarmRecord, window: MaintenanceWindow, now: float) -> IncidentRecord:
        """The window's incident with ``record``'s alarm added (the record to write)."""
        incident_id = self.incident_id(window.id)
        alarm = record.alarm
        current = self._latest.get(incident_id) or self._stored(incident_id)
        ended = now > window.ends_at
        if current is None:
            updated = IncidentRecord(
                incident_id,
                self.stream,
                KIND,
                "closed" if ended else "open",
                alarm,
                alarm.raised_at,
                alarm.raised_at,
                1,
                (alarm.device,),
                evidence=window_evidence(window),
                updated_at=now,
            )
        else:
            folded = dict(current.folded)
            folded["maintenance"] = folded.get("maintenance", 0) + 1
            updated = replace(
                current,
                state="closed" if ended or current.state == "closed" else "open",
                started_at=min(current.started_at, alarm.raised_at),
                last_at=max(current.last_at, alarm.raised_at),
                size=current.size + 1,
                devices=tuple(sorted({*current.devices, alarm.device})),
                folded=folded,
                evidence=window_evidence(window),
                updated_at=now,
            )
        self._latest[incident_id] = updated
        if updated.state == "open":
            self._open.add(incident_id)
        else:
            self._open.discard(incident_id)
        return updated

    def close_ended(self, windows: Iterable[MaintenanceWindow], now: float) -> list[IncidentRecord]:
        """Close the open incidents whose window has ended or is gone; returns them."""
        if not self._open:
            return []
        ends = {self.incident_id(w.id): w.ends_at for w in windows}
        closed: list[IncidentRecord] = []
        for incident_id in sorted(self._open):
            end = ends.get(incident_id)
            if end is None or now > end:
                record = replace(self._latest[incident_id], state="closed", updated_at=now)
                self._latest[incident_id] = record
                self._open.discard(incident_id)
                closed.append(record)
        return closed

    def _stored(self, incident_id: str) -> IncidentRecord | None:
        try:
            return _record_of(self.store.get_incident(incident_id))
        except NotFoundError:  # not there yet: this alarm opens it
            return None
