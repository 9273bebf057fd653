"""Customer assistant: conversations (status, dialogue state, handoff summary) and turns.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assistant_conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("customer_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="{}"),
        sa.Column("summary", sa.Text),
        sa.Column("advisor", sa.String(128)),
        sa.Column("language", sa.String(8), nullable=False, server_default="fr"),
        sa.Column("turn_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("client_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("handoff_at", sa.Float),
    )
    op.create_index("ix_assistant_conversations_status", "assistant_conversations", ["status"])
    op.create_table(
        "assistant_turns",
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey("assistant_conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("message_id", sa.String(64)),
        sa.Column("reply_to", sa.Integer),
    )
    op.create_index(
        "ix_assistant_turns_message",
        "assistant_turns",
        ["conversation_id", "message_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_assistant_turns_message", table_name="assistant_turns")
    op.drop_table("assistant_turns")
    op.drop_index("ix_assistant_conversations_status", table_name="assistant_conversations")
    op.drop_table("assistant_conversations")
