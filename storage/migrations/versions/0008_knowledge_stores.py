"""Each business's Gemini File Search store: its name, and how many documents it holds.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_stores",
        sa.Column("phone_number_id", sa.String(64), primary_key=True),
        sa.Column("store_name", sa.String(255), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("knowledge_stores")
