"""Holds on the daily budgets for the answers under way, and File Search indexing's tokens in
each day's usage.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage_days",
        sa.Column("embedding_tokens", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "budget_holds",
        sa.Column("inbox_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("held_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_holds")
    with op.batch_alter_table("usage_days") as batch:
        batch.drop_column("embedding_tokens")
