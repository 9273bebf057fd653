"""Model gateway: the audit log, one row per model call (budgets and rate limits read it).

No column holds a question, an answer or an error message: only identifiers, counts,
tokens, cost and times. ``seq`` orders calls recorded in the same microsecond. The table
is declared again in ``allo.gateway.audit``; this file stays as it is once released.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_audit",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("team", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Text, nullable=False, server_default="[]"),
        sa.Column("data_class", sa.String(16)),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("document_ids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("redacted", sa.Text, nullable=False, server_default="{}"),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost", sa.Float, nullable=False, server_default="0"),
        sa.Column("latency_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(128)),
    )
    op.create_index("ix_gateway_audit_at", "gateway_audit", ["at"])
    # What budgets read on every call (a team's tokens today, its calls in the last
    # minute), answered from the index alone.
    op.create_index(
        "ix_gateway_audit_team_at",
        "gateway_audit",
        ["team", "at", "outcome", "prompt_tokens", "completion_tokens"],
    )


def downgrade() -> None:
    op.drop_index("ix_gateway_audit_team_at", table_name="gateway_audit")
    op.drop_index("ix_gateway_audit_at", table_name="gateway_audit")
    op.drop_table("gateway_audit")
