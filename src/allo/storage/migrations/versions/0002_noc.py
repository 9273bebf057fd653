"""NOC engine: alarms (the log every incident is derived from), incidents, silences and
maintenance windows.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "noc_alarms",
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("alarm_id", sa.String(255), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("alarm_type", sa.String(255), nullable=False),
        sa.Column("raised_at", sa.Float),
        sa.Column("cleared_at", sa.Float),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("incident_id", sa.String(96)),
        sa.Column("reason", sa.String(16)),
        sa.Column("folded_under", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("issues", sa.Text, nullable=False, server_default="[]"),
        sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_noc_alarms_stream_seq", "noc_alarms", ["stream", "seq"], unique=True)
    op.create_index("ix_noc_alarms_pending", "noc_alarms", ["stream", "final"])
    op.create_index("ix_noc_alarms_incident", "noc_alarms", ["incident_id", "seq"])
    op.create_table(
        "noc_incidents",
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("head_alarm_id", sa.String(255), nullable=False),
        sa.Column("head_row", sa.Integer, nullable=False),
        sa.Column("head_type", sa.String(255), nullable=False),
        sa.Column("head_device", sa.String(255), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("device_count", sa.Integer, nullable=False),
        sa.Column("devices", sa.Text, nullable=False),
        sa.Column("roots", sa.Text, nullable=False),
        sa.Column("folded", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("acknowledged_at", sa.Float),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.Column("resolved_at", sa.Float),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("note", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_noc_incidents_started", "noc_incidents", ["started_at"])
    op.create_index("ix_noc_incidents_status", "noc_incidents", ["status", "started_at"])
    op.create_index("ix_noc_incidents_stream_state", "noc_incidents", ["stream", "state"])
    op.create_index("ix_noc_incidents_head_device", "noc_incidents", ["head_device"])
    op.create_table(
        "noc_silences",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "noc_maintenance",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("devices", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("noc_maintenance")
    op.drop_table("noc_silences")
    op.drop_index("ix_noc_incidents_head_device", "noc_incidents")
    op.drop_index("ix_noc_incidents_stream_state", "noc_incidents")
    op.drop_index("ix_noc_incidents_status", "noc_incidents")
    op.drop_index("ix_noc_incidents_started", "noc_incidents")
    op.drop_table("noc_incidents")
    op.drop_index("ix_noc_alarms_incident", "noc_alarms")
    op.drop_index("ix_noc_alarms_pending", "noc_alarms")
    op.drop_index("ix_noc_alarms_stream_seq", "noc_alarms")
    op.drop_table("noc_alarms")
