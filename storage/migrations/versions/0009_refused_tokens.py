"""Business tokens Meta refused (Graph error 190), until each is replaced.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "refused_tokens",
        sa.Column("phone_number_id", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("refused_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refused_tokens")
