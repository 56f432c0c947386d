"""Media in the console's transcript: a customer's file by Meta's media id, and the assistant's
own voice answers' Ogg/Opus bytes.

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

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("conversation_key", sa.String(320), nullable=False),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("media_id", sa.String(255), nullable=True),
        sa.Column("mime_type", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(128), nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("voice", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("unavailable", sa.String(16), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ux_media_inbox_role", "media", ["inbox_id", "role"], unique=True)
    op.create_index("ix_media_conversation", "media", ["conversation_key"])
    op.create_index("ix_media_created_at", "media", ["created_at"])


def downgrade() -> None:
    op.drop_table("media")
