"""Conversation states for handing a conversation to a person, and its transcript's events.

A `conversations` row per (business, user): who answers it (assistant, waiting, operator), the
operator who took it over, and the times the console lists it by. Turns gain the operator who
wrote one (`author`), events (role "event": handoff asked, taken over, handed back, reset) with a
`detail`, and the `sources` Gemini used. Inbox rows keep the user's profile name.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("conversation_key", sa.String(320), nullable=False, unique=True),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("profile_name", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(64), nullable=True),
        sa.Column("state_since", sa.Float(), nullable=False),
        sa.Column("last_user_at", sa.Float(), nullable=True),
        sa.Column("last_operator_at", sa.Float(), nullable=True),
        sa.Column("last_activity_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_conversations_activity", "conversations", ["last_activity_at"])
    op.create_index(
        "ix_conversations_state_activity", "conversations", ["state", "last_activity_at"]
    )
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("author", sa.String(64), nullable=True))
        batch.add_column(sa.Column("detail", sa.String(255), nullable=True))
        batch.add_column(sa.Column("sources", sa.Text(), nullable=True))
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("profile_name", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("profile_name")
    op.execute("DELETE FROM turns WHERE role = 'event'")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("sources")
        batch.drop_column("detail")
        batch.drop_column("author")
    op.drop_table("conversations")
