"""Usage per UTC day (messages, answers, handoffs, tokens, estimated cost), tokens per user per
day, and when a budget first bit.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("phone_number_id", sa.String(64), primary_key=True),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("handoffs", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("thinking_tokens", sa.BigInteger(), nullable=False),
        sa.Column("tts_tokens", sa.BigInteger(), nullable=False),
        sa.Column("searches", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
    )
    op.create_table(
        "user_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("user_hash", sa.String(64), primary_key=True),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "budget_notices",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("scope", sa.String(320), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("budget_notices")
    op.drop_table("user_days")
    op.drop_table("usage_days")
