"""Each turn remembers the inbox message it answers, at most one turn per role and message.

Closing a message then needs no multi-statement transaction: its turns are inserted first,
idempotently, and a retry after a crash between the two writes cannot add them twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("inbox_id", sa.BigInteger(), nullable=True))
    op.create_index("ux_turns_inbox_role", "turns", ["inbox_id", "role"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_turns_inbox_role", table_name="turns")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("inbox_id")
