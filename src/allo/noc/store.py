"""Where the NOC engine keeps alarms, incidents, silences and maintenance windows.

:class:`NocStore` is the protocol; :class:`SqlNocStore` implements it with SQLAlchemy
Core on the knowledge store's database (SQLite by default, PostgreSQL too), schema from
the Alembic migration ``0002_noc``. Every write of the engine is one transaction
(:meth:`NocStore.write`): the new alarms, the incidents they touched and the members of
the incidents that closed go in together or not at all, so a ``kill -9`` leaves either the
state before a batch or the state after it. Alarms are keyed by ``(stream, alarm_id)``:
writing one again is a no-op, which makes ingestion idempotent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, case, delete, event, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row, make_url

from allo.domain.alarms import Alarm, Evidence, Severity
from allo.errors import InvalidInputError, NotFoundError
from allo.noc.schema import noc_alarms, noc_incidents, noc_maintenance, noc_silences
from allo.noc.silences import MaintenanceWindow, Matcher, Silence
from allo.noc.sources.base import MALFORMED_TYPE
from allo.storage.sql import SqlBacked

STATUSES = ("new", "acknowledged", "resolved")
STATES = ("open", "closed")
KINDS = ("pipeline", "maintenance")
MAX_PAGE = 500
_BY_ID = select(noc_incidents).where(noc_incidents.c.id.in_(bindparam("ids", expanding=True)))
# the list view's columns only: live events need no evidence (the costliest to read back)
_SUMMARY_BY_ID = select(*(c for c in noc_incidents.c if c.name not in {"evidence", "roots"})).where(
    noc_incidents.c.id.in_(bindparam("ids", expanding=True))
)


@dataclass(slots=True)
class AlarmRecord:
    """An accepted alarm as stored, with its place in an incident (provisional while that
    incident is open, final once it is closed).

    Not frozen: one is built per alarm on the engine's hot path (a frozen dataclass costs
    four times as much to build), when the alarm arrives, and the engine fills in its
    place once the pipeline has run; read-only from then on, by convention."""

    seq: int
    alarm: Alarm
    source: str
    received_at: float
    incident_id: str | None = None
    reason: str | None = None
    folded_under: int | None = None
    detail: str = ""
    issues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """An incident as stored: ``state`` is ``open`` while it can still grow."""

    id: str
    stream: str
    kind: str
    state: str
    head: Alarm
    started_at: float
    last_at: float
    size: int
    devices: tuple[str, ...]
    roots: tuple[str, ...] = ()
    folded: dict[str, int] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    updated_at: float = 0.0


@dataclass(slots=True)
class MemberUpdate:
    """A new place for an alarm already stored: its final one when its incident closed
    (read-only by convention, as :class:`AlarmRecord`). The engine leaves out the alarms
    whose final place is the one already stored."""

    alarm_id: str
    incident_id: str
    reason: str
    folded_under: int | None
    detail: str
    # False when the engine knows the alarm is already stored under ``incident_id``: the
    # update then leaves that column, and the index on it, alone (SQLite rewrites an
    # index entry whenever an UPDATE names one of its columns, changed or not)
    moved: bool = True


@dataclass
class WriteBatch:
    """Everything one engine step changes, written in one transaction."""

    alarms: list[AlarmRecord] = field(default_factory=list)
    incidents: list[IncidentRecord] = field(default_factory=list)
    members: list[MemberUpdate] = field(default_factory=list)
    cleared: list[tuple[str, float]] = field(default_factory=list)  # (alarm_id, cleared_at)
    # open incidents that an earlier step of the same engine stored, grown since with the
    # same head and start: only their size, last time, devices, folds and update time
    # change (see :meth:`SqlNocStore.write`); stored exactly as ``incidents`` would be
    grown: list[IncidentRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alarms or self.incidents or self.members or self.cleared or self.grown)


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    """Filters of ``GET /v1/incidents``; ``None`` means any."""

    status: tuple[str, ...] = ()
    state: str | None = None
    kind: str | None = None
    stream: str | None = None
    device: str | None = None
    alarm_type: str | None = None
    since: float | None = None
    until: float | None = None
    min_size: int | None = None


class NocStore(Protocol):
    """Persistence of the NOC engine (see :class:`SqlNocStore`)."""

    def migrate(self) -> None: ...
    def close(self) -> None: ...
    def known_ids(self, stream: str) -> set[str]: ...
    def next_seq(self, stream: str) -> int: ...
    def pending(self, stream: str) -> list[AlarmRecord]: ...
    def write(self, stream: str, batch: WriteBatch) -> None: ...
    def drop_open(self, stream: str, keep: Iterable[str]) -> int: ...
    def counts(self, stream: str | None = None) -> dict[str, int]: ...
    def history(
        self, stream: str | None = None, days: float | None = None, until: float | None = None
    ) -> list[Alarm]: ...
    def list_incidents(
        self, query: IncidentQuery, offset: int = 0, limit: int = 50
    ) -> tuple[int, list[dict[str, Any]]]: ...
    def get_incident(self, incident_id: str) -> dict[str, Any]: ...
    def incidents_by_id(
        self, incident_ids: Sequence[str], detail: bool = True
    ) -> list[dict[str, Any]]: ...
    def members(
        self, incident_id: str, offset: int = 0, limit: int = 200
    ) -> tuple[int, list[dict[str, Any]]]: ...
    def attributes_of(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, str]]: ...
    def set_status(
        self, incident_id: str, status: str, by: str, note: str | None, at: float
    ) -> dict[str, Any]: ...
    def add_silence(self, silence: Silence) -> None: ...
    def silences(self) -> list[Silence]: ...
    def expire_silence(self, silence_id: str, at: float) -> Silence: ...
    def add_window(self, window: MaintenanceWindow) -> None: ...
    def windows(self) -> list[MaintenanceWindow]: ...
    def delete_window(self, window_id: str) -> None: ...


def _num(value: float | None) -> float | None:
    """NaN and infinities cannot be stored portably: they become NULL."""
    return value if value is not None and math.isfinite(value) else None


def alarm_json(row: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    data = dict(row._mapping) if isinstance(row, Row) else row
    return {
        "id": data["alarm_id"],
        "seq": data["seq"],
        "row": data["row"],
        "device": data["device"],
        "alarm_type": data["alarm_type"],
        "raised_at": data["raised_at"],
        "cleared_at": data["cleared_at"],
        "severity": data["severity"],
        "attributes": json.loads(data["attributes"]),
        "source": data["source"],
        "received_at": data["received_at"],
        "incident_id": data["incident_id"],
        "reason": data["reason"],
        "folded_under": data["folded_under"],
        "detail": data["detail"],
        "issues": json.loads(data["issues"]),
    }


def incident_summary(row: Row[Any]) -> dict[str, Any]:
    """The list view of an incident (no evidence)."""
    devices = json.loads(row.devices)
    return {
        "id": row.id,
        "stream": row.stream,
        "kind": row.kind,
        "state": row.state,
        "status": row.status,
        "head": {
            "id": row.head_alarm_id,
            "row": row.head_row,
            "alarm_type": row.head_type,
            "device": row.head_device,
        },
        "severity": row.severity,
        "started_at": row.started_at,
        "last_at": row.last_at,
        "size": row.size,
        "device_count": row.device_count,
        "devices": devices[:20],
        "folded": json.loads(row.folded),
        "acknowledged_at": row.acknowledged_at,
        "acknowledged_by": row.acknowledged_by,
        "resolved_at": row.resolved_at,
        "resolved_by": row.resolved_by,
        "note": row.note,
        "updated_at": row.updated_at,
    }


def incident_detail(row: Row[Any]) -> dict[str, Any]:
    """The drill-down view: every device, roots and the bilingual evidence."""
    data = incident_summary(row)
    evidence = json.loads(row.evidence)
    data["devices"] = json.loads(row.devices)
    data["roots"] = json.loads(row.roots)
    data["evidence"] = evidence
    data["explanation"] = {
        "fr": " ".join(e["fr"] for e in evidence),
        "en": " ".join(e["en"] for e in evidence),
    }
    return data


def _in_open_pipeline(stream: str | None) -> Any:
    """Alarms in an open incident of the pipeline (of ``stream``, or of any): those whose
    place is not final yet. Found from the few open incidents through the alarms'
    incident index; a condition on the alarms' own stream would let SQLite walk every
    alarm of the stream instead, and is not needed: an incident's id names its stream,
    and only that stream's engine stores alarms under it."""
    condition = and_(noc_incidents.c.state == "open", noc_incidents.c.kind == "pipeline")
    if stream:
        condition = and_(condition, noc_incidents.c.stream == stream)
    return noc_alarms.c.incident_id.in_(select(noc_incidents.c.id).where(condition))


def _partition_of(name: str, stream: str) -> bool:
    """Whether ``name`` is a partition of ``stream`` (``stream.0``, ``stream.1``, ...)."""
    prefix, dot, number = name.rpartition(".")
    return bool(dot) and prefix == stream and number.isascii() and number.isdigit()


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{json.dumps(escaped)[1:-1]}%"


_ALARM_COLUMNS = (
    "stream",
    "alarm_id",
    "seq",
    "row",
    "device",
    "alarm_type",
    "raised_at",
    "cleared_at",
    "severity",
    "attributes",
    "source",
    "received_at",
    "incident_id",
    "reason",
    "folded_under",
    "detail",
    "issues",
)
_SQLITE_ALARM_INSERT = (
    f"INSERT INTO {noc_alarms.name} ("
    + ", ".join(f'"{c}"' for c in _ALARM_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" for _ in _ALARM_COLUMNS)
    + ") ON CONFLICT (stream, alarm_id) DO NOTHING"
)
_SQLITE_MEMBER_UPDATE = (
    f"UPDATE {noc_alarms.name} SET incident_id = ?, reason = ?, folded_under = ?, detail = ? "
    "WHERE stream = ? AND alarm_id = ?"
)
# the same for an alarm already stored under its incident (``MemberUpdate.moved`` false)
_SQLITE_MEMBER_SETTLE = (
    f"UPDATE {noc_alarms.name} SET reason = ?, folded_under = ?, detail = ? "
    "WHERE stream = ? AND alarm_id = ?"
)
_SQLITE_CLEAR = (
    f"UPDATE {noc_alarms.name} SET cleared_at = ? "
    "WHERE stream = ? AND alarm_id = ? AND cleared_at IS NULL"
)
# the clear time a resent alarm brings (only where none is stored yet)
_CLEAR = (
    update(noc_alarms)
    .where(
        and_(
            noc_alarms.c.stream == bindparam("b_stream"),
            noc_alarms.c.alarm_id == bindparam("b_alarm_id"),
            noc_alarms.c.cleared_at.is_(None),
        )
    )
    .values(cleared_at=bindparam("b_cleared_at"))
)
_SEVERITY = {severity: severity.value for severity in Severity}  # faster than Enum.value
_NO_ATTRIBUTES = "{}"
_NO_ISSUES = "[]"


_INCIDENT_COLUMNS = (
    "id",
    "stream",
    "kind",
    "state",
    "status",
    "head_alarm_id",
    "head_row",
    "head_type",
    "head_device",
    "severity",
    "started_at",
    "last_at",
    "size",
    "device_count",
    "devices",
    "roots",
    "folded",
    "evidence",
    "updated_at",
)
_INCIDENT_UPDATED = [c for c in _INCIDENT_COLUMNS if c not in {"id", "stream", "kind", "status"}]
_SQLITE_INCIDENT_UPSERT = (
    f"INSERT INTO {noc_incidents.name} ("
    + ", ".join(_INCIDENT_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" for _ in _INCIDENT_COLUMNS)
    + ") ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _INCIDENT_UPDATED)
    # a resolved incident that grows again needs attention again
    + f", status = CASE WHEN ({noc_incidents.name}.status = 'resolved' AND excluded.size > "
    + f"{noc_incidents.name}.size) THEN 'new' ELSE {noc_incidents.name}.status END"
)


# an open incident grown since a step stored it (``WriteBatch.grown``): the columns that
# growth changes, none of them indexed, so each row costs one table update instead of a
# failed insert plus five index rewrites; the status rule of the upsert goes first
_SQLITE_INCIDENT_REOPEN = (
    f"UPDATE {noc_incidents.name} SET status = 'new' "
    "WHERE id = ? AND status = 'resolved' AND size < ?"
)
_SQLITE_INCIDENT_GROW = (
    f"UPDATE {noc_incidents.name} SET last_at = ?, size = ?, device_count = ?, devices = ?, "
    "folded = ?, updated_at = ? WHERE id = ? AND state = 'open'"
)


def _incident_tuple(r: IncidentRecord) -> tuple[Any, ...]:
    """An incident's row for ``_SQLITE_INCIDENT_UPSERT``, as a tuple in ``_INCIDENT_COLUMNS``
    order (the values :meth:`SqlNocStore._upsert_incidents` writes elsewhere)."""
    return (
        r.id,
        r.stream,
        r.kind,
        r.state,
        "new",
        r.head.id[:255],
        r.head.row,
        r.head.alarm_type[:255],
        r.head.device[:255],
        _SEVERITY[r.head.severity],
        _num(r.started_at) or 0.0,
        _num(r.last_at) or 0.0,
        r.size,
        len(r.devices),
        json.dumps(list(r.devices), ensure_ascii=False),
        json.dumps(list(r.roots), ensure_ascii=False),
        json.dumps(r.folded, sort_keys=True),
        json.dumps(
            [{"kind": e.kind, "fr": e.fr, "en": e.en} for e in r.evidence], ensure_ascii=False
        )
        if r.evidence
        else "[]",
        r.updated_at,
    )


def _alarm_tuple(stream: str, record: AlarmRecord) -> tuple[Any, ...]:
    """:meth:`SqlNocStore._alarm_row` as a tuple in ``_ALARM_COLUMNS`` order (SQLite)."""
    alarm = record.alarm
    raised, cleared = alarm.raised_at, alarm.cleared_at
    attributes = alarm.attributes
    return (
        stream,
        alarm.id[:255],
        record.seq,
        alarm.row,
        alarm.device[:255],
        alarm.alarm_type[:255],
        raised if math.isfinite(raised) else None,
        cleared if cleared is not None and math.isfinite(cleared) else None,
        _SEVERITY[alarm.severity],
        json.dumps(dict(attributes), ensure_ascii=False) if attributes else _NO_ATTRIBUTES,
        record.source[:32],
        record.received_at,
        record.incident_id,
        record.reason,
        record.folded_under,
        record.detail,
        json.dumps(list(record.issues), ensure_ascii=False) if record.issues else _NO_ISSUES,
    )


class SqlNocStore(SqlBacked):
    """``NocStore`` over SQLAlchemy Core, sharing the knowledge store's URL and engine setup."""

    def __init__(self, url: str, *, durable: bool = False) -> None:
        # durable (``ALLO_NOC_DURABLE_COMMITS``): an alarm acknowledged to its source
        # after a commit (a broker XACK, an HTTP 200) is never sent again, so a power cut
        # must not undo that commit; a file replay can simply be run again
        super().__init__(url, durable=durable)
        self._upsert: Any = None
        self._alarm_insert: Any = None
        self._writer: Any = None  # see _sqlite_writer

    @property
    def _engine(self) -> Any:
        return self._sql.engine

    # -- checkpoints (SQLite) --------------------------------------------------------------

    def defer_checkpoints(self) -> bool:
        """Stop this store's connections from checkpointing the WAL inside their commits
        (``PRAGMA wal_autocheckpoint=0``), for a caller that checkpoints from a thread of
        its own (the broker's consumer: a checkpoint, fsync included, inside a commit
        is what made its latency tail). Open pooled connections are closed so that every
        connection gets the pragma. Returns ``False`` (and changes nothing) when the
        database is not SQLite."""
        if self._engine.dialect.name != "sqlite":
            return False

        def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        event.listen(self._engine, "connect", no_autocheckpoint)
        self._release_writer()  # reopened with the pragma at the next write
        self._engine.dispose()
        return True

    def checkpoint(self) -> None:
        """A passive WAL checkpoint on the writer's own connection (SQLite only): the
        fallback when a background checkpointer could not keep the WAL small."""
        if self._engine.dialect.name != "sqlite":
            return
        writer = self._sqlite_writer()
        if writer is not None:
            writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            return
        with self._engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    # -- the engine's side -------------------------------------------------------------

    def known_ids(self, stream: str) -> set[str]:
        with self._engine.connect() as c:
            return set(
                c.execute(select(noc_alarms.c.alarm_id).where(noc_alarms.c.stream == stream))
                .scalars()
                .all()
            )

    def devices_by_stream(self, stream: str) -> dict[str, set[str]]:
        """Devices with stored alarms in ``stream`` and in each ``<stream>.<p>`` (the streams
        of a replay split in processes), so that a re-run can check that it sends every
        device where its earlier run did."""
        split = noc_alarms.c.stream.startswith(f"{stream}.", autoescape=True)
        query = (
            select(noc_alarms.c.stream, noc_alarms.c.device)
            .where(or_(noc_alarms.c.stream == stream, split))
            .group_by(noc_alarms.c.stream, noc_alarms.c.device)
        )
        found: dict[str, set[str]] = {}
        with self._engine.connect() as c:
            for name, device in c.execute(query):
                if name == stream or _partition_of(name, stream):  # LIKE may ignore case
                    found.setdefault(name, set()).add(device)
        return found

    def next_seq(self, stream: str) -> int:
        with self._engine.connect() as c:
            value = c.execute(
                select(func.max(noc_alarms.c.seq)).where(noc_alarms.c.stream == stream)
            ).scalar()
        return 0 if value is None else int(value) + 1

    def pending(self, stream: str) -> list[AlarmRecord]:
        """Alarms whose incident is not closed yet, in arrival order (for a restart)."""
        with self._engine.connect() as c:
            rows = c.execute(
                select(noc_alarms).where(_in_open_pipeline(stream)).order_by(noc_alarms.c.seq)
            ).all()
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: Row[Any]) -> AlarmRecord:
        raised = row.raised_at
        alarm = Alarm(
            id=row.alarm_id,
            device=row.device,
            alarm_type=row.alarm_type,
            raised_at=float("nan") if raised is None else raised,
            cleared_at=row.cleared_at,
            severity=Severity(row.severity),
            attributes=json.loads(row.attributes),
            row=row.row,
        )
        return AlarmRecord(
            seq=row.seq,
            alarm=alarm,
            source=row.source,
            received_at=row.received_at,
            incident_id=row.incident_id,
            reason=row.reason,
            folded_under=row.folded_under,
            detail=row.detail,
            issues=tuple(json.loads(row.issues)),
        )

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert)(table)

    def write(self, stream: str, batch: WriteBatch) -> None:
        """Apply one engine step atomically (see the module docstring)."""
        if not batch:
            return
        writer = self._sqlite_writer()
        if writer is not None:
            try:
                self._write_sqlite(writer, stream, batch)
                writer.commit()
            except BaseException:
                self._abandon_write()
                raise
            return
        with self._engine.begin() as c:
            if c.dialect.name == "sqlite":  # in memory: the connection everyone shares
                self._write_sqlite(c.connection.driver_connection, stream, batch)
                return
            if batch.alarms:
                if self._alarm_insert is None:
                    self._alarm_insert = self._insert(noc_alarms).on_conflict_do_nothing(
                        index_elements=["stream", "alarm_id"]
                    )
                c.execute(self._alarm_insert, [self._alarm_row(stream, r) for r in batch.alarms])
            if batch.cleared:
                # one statement for all (a re-run of a file resends every alarm: one
                # statement per alarm cost three times a fresh ingest)
                c.execute(
                    _CLEAR,
                    [
                        {"b_stream": stream, "b_alarm_id": alarm_id, "b_cleared_at": _num(at)}
                        for alarm_id, at in batch.cleared
                    ],
                )
            if batch.incidents or batch.grown:
                self._upsert_incidents(c, [*batch.incidents, *batch.grown])
            if batch.members:
                c.execute(
                    update(noc_alarms)
                    .where(
                        and_(
                            noc_alarms.c.stream == stream,
                            noc_alarms.c.alarm_id == bindparam("b_alarm_id"),
                        )
                    )
                    .values(
                        incident_id=bindparam("b_incident_id"),
                        reason=bindparam("b_reason"),
                        folded_under=bindparam("b_folded_under"),
                        detail=bindparam("b_detail"),
                    ),
                    [
                        {
                            "b_alarm_id": m.alarm_id,
                            "b_incident_id": m.incident_id,
                            "b_reason": m.reason,
                            "b_folded_under": m.folded_under,
                            "b_detail": m.detail,
                        }
                        for m in batch.members
                    ],
                )

    def _sqlite_writer(self) -> Any:
        """The one SQLite connection this store writes with, kept checked out of the pool
        (``None`` for PostgreSQL and for an in-memory database, whose single connection
        everyone shares). A streaming engine commits a small step every few
        milliseconds; going through SQLAlchemy's connection, pool and transaction
        objects for each cost about as much as SQLite's own commit. The driver's
        connection runs the same statements in the same single transaction (the sqlite3
        module opens it before the first write; :meth:`write` commits or rolls back)."""
        if self._writer is None:
            if self._engine.dialect.name != "sqlite" or make_url(self.url).database in (
                None,
                "",
                ":memory:",
            ):
                return None
            self._writer = self._engine.raw_connection()
        return self._writer.driver_connection

    def _abandon_write(self) -> None:
        """Roll the failed step back; a connection that cannot even do that is dropped
        (the next write opens another)."""
        if self._writer is None:
            return
        try:
            self._writer.driver_connection.rollback()
        except Exception:
            writer, self._writer = self._writer, None
            writer.invalidate()

    def _release_writer(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()  # back to the pool

    def close(self) -> None:
        self._release_writer()
        super().close()

    def _write_sqlite(self, writer: Any, stream: str, batch: WriteBatch) -> None:
        """:meth:`write` on SQLite: every statement straight to the driver, rows as tuples
        (SQLAlchemy's per-row parameter processing cost more than SQLite's insert); the
        same statements and values as the portable path."""
        if batch.alarms:
            writer.executemany(
                _SQLITE_ALARM_INSERT, [_alarm_tuple(stream, r) for r in batch.alarms]
            )
        if batch.cleared:
            writer.executemany(
                _SQLITE_CLEAR, [(_num(at), stream, alarm_id) for alarm_id, at in batch.cleared]
            )
        if batch.incidents:
            writer.executemany(
                _SQLITE_INCIDENT_UPSERT, [_incident_tuple(r) for r in batch.incidents]
            )
        if batch.grown:
            self._grow_incidents(writer, batch.grown)
        moved = [m for m in batch.members if m.moved]
        if moved:
            writer.executemany(
                _SQLITE_MEMBER_UPDATE,
                [
                    (m.incident_id, m.reason, m.folded_under, m.detail, stream, m.alarm_id)
                    for m in moved
                ],
            )
        if len(moved) < len(batch.members):
            writer.executemany(
                _SQLITE_MEMBER_SETTLE,
                [
                    (m.reason, m.folded_under, m.detail, stream, m.alarm_id)
                    for m in batch.members
                    if not m.moved
                ],
            )

    @staticmethod
    def _grow_incidents(writer: Any, records: list[IncidentRecord]) -> None:
        """``WriteBatch.grown``: the columns that growth changes. Should a row not be
        there as an open incident (which the engine rules out), every record of the list
        goes through the full upsert after all, which writes the same values."""
        writer.executemany(_SQLITE_INCIDENT_REOPEN, [(r.id, r.size) for r in records])
        cursor = writer.executemany(
            _SQLITE_INCIDENT_GROW,
            [
                (
                    _num(r.last_at) or 0.0,
                    r.size,
                    len(r.devices),
                    json.dumps(list(r.devices), ensure_ascii=False),
                    json.dumps(r.folded, sort_keys=True),
                    r.updated_at,
                    r.id,
                )
                for r in records
            ],
        )
        if cursor.rowcount != len(records):
            writer.executemany(_SQLITE_INCIDENT_UPSERT, [_incident_tuple(r) for r in records])

    @staticmethod
    def _alarm_row(stream: str, record: AlarmRecord) -> dict[str, Any]:
        alarm = record.alarm
        return {
            "stream": stream,
            "alarm_id": alarm.id[:255],
            "seq": record.seq,
            "row": alarm.row,
            "device": alarm.device[:255],
            "alarm_type": alarm.alarm_type[:255],
            "raised_at": _num(alarm.raised_at),
            "cleared_at": _num(alarm.cleared_at),
            "severity": alarm.severity.value,
            "attributes": json.dumps(dict(alarm.attributes), ensure_ascii=False),
            "source": record.source[:32],
            "received_at": record.received_at,
            "incident_id": record.incident_id,
            "reason": record.reason,
            "folded_under": record.folded_under,
            "detail": record.detail,
            "issues": json.dumps(list(record.issues), ensure_ascii=False),
        }

    def _upsert_incidents(self, c: Connection, records: Sequence[IncidentRecord]) -> None:
        """The portable upsert (SQLite takes ``_SQLITE_INCIDENT_UPSERT`` in
        :meth:`_write_sqlite`, with the same values)."""
        rows = [
            {
                "id": r.id,
                "stream": r.stream,
                "kind": r.kind,
                "state": r.state,
                "status": "new",
                "head_alarm_id": r.head.id[:255],
                "head_row": r.head.row,
                "head_type": r.head.alarm_type[:255],
                "head_device": r.head.device[:255],
                "severity": r.head.severity.value,
                "started_at": _num(r.started_at) or 0.0,
                "last_at": _num(r.last_at) or 0.0,
                "size": r.size,
                "device_count": len(r.devices),
                "devices": json.dumps(list(r.devices), ensure_ascii=False),
                "roots": json.dumps(list(r.roots), ensure_ascii=False),
                "folded": json.dumps(r.folded, sort_keys=True),
                "evidence": json.dumps(
                    [{"kind": e.kind, "fr": e.fr, "en": e.en} for e in r.evidence],
                    ensure_ascii=False,
                ),
                "updated_at": r.updated_at,
            }
            for r in records
        ]
        c.execute(self._incident_upsert(), rows)

    def _incident_upsert(self) -> Any:
        """Built once: SQLAlchemy then reuses its compiled form (building it costs ~1 ms)."""
        if self._upsert is not None:
            return self._upsert
        statement = self._insert(noc_incidents)
        new = statement.excluded
        grown = and_(noc_incidents.c.status == "resolved", new.size > noc_incidents.c.size)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                **{name: getattr(new, name) for name in _INCIDENT_UPDATED},
                # a resolved incident that grows again needs attention again
                "status": case((grown, "new"), else_=noc_incidents.c.status),
            },
        )
        self._upsert = statement
        return statement

    def drop_open(self, stream: str, keep: Iterable[str]) -> int:
        """Forget open incidents of ``stream`` that a restart did not rebuild."""
        kept = list(keep)
        condition = and_(
            noc_incidents.c.stream == stream,
            noc_incidents.c.state == "open",
            noc_incidents.c.kind == "pipeline",
        )
        with self._engine.begin() as c:
            stale = [
                i
                for i in c.execute(select(noc_incidents.c.id).where(condition)).scalars()
                if i not in set(kept)
            ]
            for start in range(0, len(stale), 500):
                c.execute(
                    delete(noc_incidents).where(noc_incidents.c.id.in_(stale[start : start + 500]))
                )
        return len(stale)

    def history(
        self, stream: str | None = None, days: float | None = None, until: float | None = None
    ) -> list[Alarm]:
        """The stored alarms a causal graph is learned from, oldest first: those of
        ``stream`` and its partitions (``stream.0``, ...) or of every stream, raised no
        later than ``until`` and within ``days`` before the newest such raise time (all
        when ``None``). Stand-ins of unreadable input and alarms stored without a raise
        time are left out; attributes are not read (learning needs type, device and time
        only).

        Why the newest raise time and not the clock: a history replayed from files keeps
        its own times, and the last ``days`` of it are what is wanted."""
        c_ = noc_alarms.c
        condition = and_(c_.raised_at.is_not(None), c_.alarm_type != MALFORMED_TYPE)
        if until is not None:
            condition = and_(condition, c_.raised_at <= until)
        with self._engine.connect() as c:
            if stream:
                # the stream and its partitions ``stream.<p>``, to the letter: SQLite's
                # LIKE ignores case, and names may hold dots of their own
                named = c.execute(select(c_.stream).distinct()).scalars()
                mine = [n for n in named if n == stream or _partition_of(n, stream)]
                condition = and_(condition, c_.stream.in_(mine))
            if days is not None:
                newest = c.execute(select(func.max(c_.raised_at)).where(condition)).scalar()
                if newest is None:
                    return []
                condition = and_(condition, c_.raised_at >= newest - days * 86_400.0)
            rows = c.execute(
                select(c_.alarm_id, c_.device, c_.alarm_type, c_.raised_at)
                .where(condition)
                .order_by(c_.raised_at, c_.stream, c_.seq)
            ).all()
        return [
            Alarm(
                id=r.alarm_id,
                device=r.device,
                alarm_type=r.alarm_type,
                raised_at=r.raised_at,
                row=i,
            )
            for i, r in enumerate(rows)
        ]

    def counts(self, stream: str | None = None) -> dict[str, int]:
        """Alarms, final alarms (those not in an open pipeline incident), incidents (and
        their total size) of a stream or of all."""
        a_where = and_(True, *([noc_alarms.c.stream == stream] if stream else []))
        i_where = and_(True, *([noc_incidents.c.stream == stream] if stream else []))
        with self._engine.connect() as c:
            alarms = c.execute(
                select(func.count()).select_from(noc_alarms).where(a_where)
            ).scalar_one()
            pending = c.execute(
                select(func.count()).select_from(noc_alarms).where(_in_open_pipeline(stream))
            ).scalar_one()
            final = alarms - pending
            incidents, size, open_ = c.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(noc_incidents.c.size), 0),
                    func.coalesce(func.sum(case((noc_incidents.c.state == "open", 1), else_=0)), 0),
                )
                .select_from(noc_incidents)
                .where(i_where)
            ).one()
        return {
            "alarms": int(alarms),
            "final_alarms": int(final),
            "incidents": int(incidents),
            "open_incidents": int(open_),
            "incident_alarms": int(size),
        }

    # -- the operators' side -----------------------------------------------------------

    def list_incidents(
        self, query: IncidentQuery, offset: int = 0, limit: int = 50
    ) -> tuple[int, list[dict[str, Any]]]:
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInputError(f"limit must be 1..{MAX_PAGE} and offset >= 0")
        t = noc_incidents.c
        conditions: list[Any] = []
        if query.status:
            conditions.append(t.status.in_(query.status))
        for column, value in (
            (t.state, query.state),
            (t.kind, query.kind),
            (t.stream, query.stream),
            (t.head_type, query.alarm_type),
        ):
            if value:
                conditions.append(column == value)
        if query.device:
            conditions.append(
                or_(t.head_device == query.device, t.devices.like(_like(query.device), escape="\\"))
            )
        if query.since is not None:
            conditions.append(t.started_at >= query.since)
        if query.until is not None:
            conditions.append(t.started_at < query.until)
        if query.min_size is not None:
            conditions.append(t.size >= query.min_size)
        where = and_(True, *conditions)
        with self._engine.connect() as c:
            total = c.execute(
                select(func.count()).select_from(noc_incidents).where(where)
            ).scalar_one()
            rows = c.execute(
                select(noc_incidents)
                .where(where)
                .order_by(t.started_at.desc(), t.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return int(total), [incident_summary(row) for row in rows]

    def _incident_row(self, c: Connection, incident_id: str) -> Row[Any]:
        row = c.execute(select(noc_incidents).where(noc_incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFoundError(f"no incident {incident_id!r}; list them with GET /v1/incidents")
        return row

    def get_incident(self, incident_id: str) -> dict[str, Any]:
        with self._engine.connect() as c:
            return incident_detail(self._incident_row(c, incident_id))

    def incidents_by_id(
        self, incident_ids: Sequence[str], detail: bool = True
    ) -> list[dict[str, Any]]:
        """Several incidents (unknown ids left out), in the order asked; with ``detail``
        false, as the list view shows them (no evidence: cheaper, for live events)."""
        wanted = list(dict.fromkeys(incident_ids))
        found: dict[str, dict[str, Any]] = {}
        statement, view = (
            (_BY_ID, incident_detail) if detail else (_SUMMARY_BY_ID, incident_summary)
        )
        with self._engine.connect() as c:
            for start in range(0, len(wanted), 500):
                rows = c.execute(statement, {"ids": wanted[start : start + 500]}).all()
                found.update({row.id: view(row) for row in rows})
        return [found[i] for i in wanted if i in found]

    def attributes_of(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, str]]:
        """The attributes of stored alarms by ``(stream, alarm_id)`` (unknown ones left out):
        what silences with label matchers read of an incident's head."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], dict[str, str]] = {}
        by_stream: dict[str, list[str]] = {}
        for stream, alarm_id in wanted:
            by_stream.setdefault(stream, []).append(alarm_id)
        t = noc_alarms.c
        with self._engine.connect() as c:
            for stream, ids in by_stream.items():
                for start in range(0, len(ids), 500):
                    rows = c.execute(
                        select(t.alarm_id, t.attributes).where(
                            and_(t.stream == stream, t.alarm_id.in_(ids[start : start + 500]))
                        )
                    ).all()
                    found.update({(stream, r.alarm_id): json.loads(r.attributes) for r in rows})
        return found

    def members(
        self, incident_id: str, offset: int = 0, limit: int = 200
    ) -> tuple[int, list[dict[str, Any]]]:
        """The incident's alarms (head included) in arrival order."""
        if not 1 <= limit <= 5000 or offset < 0:
            raise InvalidInputError("members_limit must be 1..5000 and members_offset >= 0")
        where = noc_alarms.c.incident_id == incident_id
        with self._engine.connect() as c:
            total = c.execute(
                select(func.count()).select_from(noc_alarms).where(where)
            ).scalar_one()
            rows = c.execute(
                select(noc_alarms)
                .where(where)
                .order_by(noc_alarms.c.seq)
                .offset(offset)
                .limit(limit)
            ).all()
        return int(total), [alarm_json(row) for row in rows]

    def set_status(
        self, incident_id: str, status: str, by: str, note: str | None, at: float
    ) -> dict[str, Any]:
        if status not in STATUSES[1:]:
            raise InvalidInputError(f"status must be one of {STATUSES[1:]}")
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if status == "acknowledged":
            values.update(acknowledged_at=at, acknowledged_by=by[:128])
        else:
            values.update(resolved_at=at, resolved_by=by[:128])
        if note is not None:
            values["note"] = note
        with self._engine.begin() as c:
            self._incident_row(c, incident_id)
            c.execute(update(noc_incidents).where(noc_incidents.c.id == incident_id).values(values))
            return incident_detail(self._incident_row(c, incident_id))

    def add_silence(self, silence: Silence) -> None:
        with self._engine.begin() as c:
            c.execute(
                insert(noc_silences).values(
                    id=silence.id,
                    matchers=json.dumps([m.to_json() for m in silence.matchers]),
                    starts_at=silence.starts_at,
                    ends_at=silence.ends_at,
                    created_by=silence.created_by[:128],
                    comment=silence.comment,
                    created_at=silence.created_at,
                )
            )

    @staticmethod
    def _silence(row: Row[Any]) -> Silence:
        return Silence(
            id=row.id,
            matchers=tuple(Matcher.from_json(m) for m in json.loads(row.matchers)),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            created_by=row.created_by,
            comment=row.comment,
            created_at=row.created_at,
        )

    def silences(self) -> list[Silence]:
        with self._engine.connect() as c:
            rows = c.execute(select(noc_silences).order_by(noc_silences.c.created_at)).all()
        return [self._silence(row) for row in rows]

    def expire_silence(self, silence_id: str, at: float) -> Silence:
        """End a silence now (kept for the record, as Alertmanager does)."""
        with self._engine.begin() as c:
            row = c.execute(select(noc_silences).where(noc_silences.c.id == silence_id)).first()
            if row is None:
                raise NotFoundError(f"no silence {silence_id!r}; list them with GET /v1/silences")
            if row.ends_at > at:
                # ends now (a pending one too: it never starts); keep starts < ends
                starts = min(row.starts_at, at - 1e-3)
                ends = at
                c.execute(
                    update(noc_silences)
                    .where(noc_silences.c.id == silence_id)
                    .values(starts_at=starts, ends_at=ends)
                )
            row = c.execute(select(noc_silences).where(noc_silences.c.id == silence_id)).one()
        return self._silence(row)

    def add_window(self, window: MaintenanceWindow) -> None:
        with self._engine.begin() as c:
            c.execute(
                insert(noc_maintenance).values(
                    id=window.id,
                    devices=json.dumps(sorted(window.devices), ensure_ascii=False),
                    starts_at=window.starts_at,
                    ends_at=window.ends_at,
                    created_by=window.created_by[:128],
                    comment=window.comment,
                    created_at=window.created_at,
                )
            )

    def windows(self) -> list[MaintenanceWindow]:
        with self._engine.connect() as c:
            rows = c.execute(select(noc_maintenance).order_by(noc_maintenance.c.starts_at)).all()
        return [
            MaintenanceWindow(
                id=row.id,
                devices=frozenset(json.loads(row.devices)),
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                created_by=row.created_by,
                comment=row.comment,
                created_at=row.created_at,
            )
            for row in rows
        ]

    def delete_window(self, window_id: str) -> None:
        with self._engine.begin() as c:
            result = c.execute(delete(noc_maintenance).where(noc_maintenance.c.id == window_id))
            if result.rowcount == 0:
                raise NotFoundError(
                    f"no maintenance window {window_id!r}; list them with GET /v1/maintenance"
                )
