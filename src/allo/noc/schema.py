"""The NOC tables as SQLAlchemy Core objects (created by migration ``0002_noc``).

``noc_alarms`` is the log: every accepted alarm, once, keyed by ``(stream, alarm_id)``,
with the incident it sits in. Its place there is final once that incident is closed
(``noc_incidents.state``); the alarms of open pipeline incidents are pushed through a
fresh pipeline when an engine restarts (after ``kill -9`` too), which rebuilds the open
incidents without counting anything twice. Migration ``0005`` dropped the ``final`` flag
that repeated the incident's state.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

noc_alarms = Table(
    "noc_alarms",
    metadata,
    Column("stream", String(64), primary_key=True),
    Column("alarm_id", String(255), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("row", Integer, nullable=False),
    Column("device", String(255), nullable=False),
    Column("alarm_type", String(255), nullable=False),
    Column("raised_at", Float),
    Column("cleared_at", Float),
    Column("severity", String(16), nullable=False),
    Column("attributes", Text, nullable=False),
    Column("source", String(32), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("incident_id", String(96)),
    Column("reason", String(16)),
    Column("folded_under", Integer),
    Column("detail", Text, nullable=False),
    Column("issues", Text, nullable=False),
)

noc_incidents = Table(
    "noc_incidents",
    metadata,
    Column("id", String(96), primary_key=True),
    Column("stream", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("head_alarm_id", String(255), nullable=False),
    Column("head_row", Integer, nullable=False),
    Column("head_type", String(255), nullable=False),
    Column("head_device", String(255), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("size", Integer, nullable=False),
    Column("device_count", Integer, nullable=False),
    Column("devices", Text, nullable=False),
    Column("roots", Text, nullable=False),
    Column("folded", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("acknowledged_at", Float),
    Column("acknowledged_by", String(128)),
    Column("resolved_at", Float),
    Column("resolved_by", String(128)),
    Column("note", Text),
    Column("updated_at", Float, nullable=False),
)

noc_silences = Table(
    "noc_silences",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

noc_maintenance = Table(
    "noc_maintenance",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("devices", Text, nullable=False),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
