"""Per-user rate limits: when each user was last told they are over a limit, per window.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_notices",
        sa.Column("user_key", sa.String(255), primary_key=True),
        sa.Column("window", sa.String(8), primary_key=True),
        sa.Column("notified_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_inbox_user_received", "inbox", ["user_key", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_user_received", table_name="inbox")
    op.drop_table("rate_notices")
