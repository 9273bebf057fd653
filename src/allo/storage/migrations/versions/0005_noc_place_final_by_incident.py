"""NOC engine: an alarm's place is final when its incident is closed.

``noc_alarms.final`` repeated the state of the alarm's incident, so closing an incident
rewrote every one of its alarms, most of them only to set that flag (a streaming engine
stores each alarm in its open incident as it arrives). The flag and its index go; the
alarms still to push through the pipeline after a restart are those of open pipeline
incidents (``ix_noc_incidents_stream_state`` and ``ix_noc_alarms_incident`` find them).
Downgrading recomputes the flag from the incidents.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_noc_alarms_pending", "noc_alarms")
    with op.batch_alter_table("noc_alarms") as batch:
        batch.drop_column("final")


def downgrade() -> None:
    with op.batch_alter_table("noc_alarms") as batch:
        batch.add_column(sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE noc_alarms SET final = NOT EXISTS (SELECT 1 FROM noc_incidents i"
        " WHERE i.id = noc_alarms.incident_id AND i.state = 'open'"
        " AND i.kind = 'pipeline')"
    )
    op.create_index("ix_noc_alarms_pending", "noc_alarms", ["stream", "final"])
