"""Migration 0005: an alarm's place is final when its incident is closed (the ``final``
flag that repeated it is dropped, and recomputed by a downgrade)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite

from allo.noc.schema import noc_alarms
from allo.noc.store import SqlNocStore, _in_open_pipeline
from allo.storage.sql import _MIGRATIONS

_INCIDENT = (
    "INSERT INTO noc_incidents (id, stream, kind, state, status, head_alarm_id, head_row, "
    "head_type, head_device, severity, started_at, last_at, size, device_count, devices, "
    "roots, folded, evidence, updated_at) VALUES (?, 't', ?, ?, 'new', ?, 0, 'x', 'd', "
    "'major', 1.0, 1.0, 1, 1, '[\"d\"]', '[]', '{}', '[]', 1.0)"
)
_ALARM = (
    "INSERT INTO noc_alarms (stream, alarm_id, seq, row, device, alarm_type, raised_at, "
    "severity, attributes, source, received_at, incident_id, reason, detail, issues, final) "
    "VALUES ('t', ?, ?, ?, 'd', 'x', 1.0, 'major', '{}', 'api', 1.0, ?, 'head', '', '[]', ?)"
)


def _migrate(url: str, to: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, to)
    engine.dispose()


def _columns(path: Path) -> set[str]:
    with sqlite3.connect(path) as c:
        return {row[1] for row in c.execute("PRAGMA table_info(noc_alarms)")}


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as c:
        return {row[1] for row in c.execute("PRAGMA index_list(noc_alarms)")}


def test_pending_alarms_are_those_of_open_pipeline_incidents_across_the_migration(
    tmp_path: Path,
) -> None:
    path = tmp_path / "noc.db"
    url = f"sqlite:///{path}"
    _migrate(url, "0004")
    with sqlite3.connect(path) as c:
        c.execute(_INCIDENT, ("t-0000000", "pipeline", "open", "open-1"))
        c.execute(_INCIDENT, ("t-0000001", "pipeline", "closed", "closed-1"))
        c.execute(_INCIDENT, ("t-mw-1", "maintenance", "open", "window-1"))
        c.execute(_ALARM, ("open-1", 0, 0, "t-0000000", 0))
        c.execute(_ALARM, ("closed-1", 1, 1, "t-0000001", 1))
        c.execute(_ALARM, ("window-1", 2, 2, "t-mw-1", 1))

    _migrate(url, "head")
    assert "final" not in _columns(path) and "ix_noc_alarms_pending" not in _indexes(path)
    assert {"ix_noc_alarms_incident", "ix_noc_alarms_stream_seq"} <= _indexes(path)
    store = SqlNocStore(url)
    assert [r.alarm.id for r in store.pending("t")] == ["open-1"]
    assert store.pending("other") == []
    counts = store.counts("t")
    assert (counts["alarms"], counts["final_alarms"]) == (3, 2)
    store.close()

    _migrate(url, "0004", down=True)
    with sqlite3.connect(path) as c:
        final = dict(c.execute("SELECT alarm_id, final FROM noc_alarms"))
    assert final == {"open-1": 0, "closed-1": 1, "window-1": 1}
    assert "ix_noc_alarms_pending" in _indexes(path)


def test_a_restart_reads_pending_alarms_through_the_open_incidents(tmp_path: Path) -> None:
    """The pending read starts from the open incidents and their alarms' index: walking
    every alarm of the stream (as a join on the stream did) costs a restart the whole
    history."""
    url = f"sqlite:///{tmp_path / 'noc.db'}"
    store = SqlNocStore(url)
    store.migrate()
    store.close()
    query = noc_alarms.select().where(_in_open_pipeline("t")).order_by(noc_alarms.c.seq)
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(tmp_path / "noc.db") as c:
        plan = " | ".join(row[3] for row in c.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert "USING INDEX ix_noc_alarms_incident" in plan, plan
    assert "ix_noc_alarms_stream_seq" not in plan, plan
