"""Messages the service sent, by Meta's id, with the latest delivery status of each.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sent_messages",
        sa.Column("wamid", sa.String(255), primary_key=True),
        sa.Column("conversation_key", sa.String(320), nullable=False),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("turn_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_title", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_sent_messages_inbox", "sent_messages", ["inbox_id"])
    op.create_index("ix_sent_messages_turn", "sent_messages", ["turn_id"])
    op.create_index("ix_sent_messages_conversation", "sent_messages", ["conversation_key"])
    op.create_index("ix_sent_messages_created_at", "sent_messages", ["created_at"])


def downgrade() -> None:
    op.drop_table("sent_messages")
