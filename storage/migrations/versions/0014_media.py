"""Media in the console's transcript: a customer's file by Meta's media id, and the assistant's
own voice answers' Ogg/Opus bytes. Customers' media sent before this step is found in the inbox,
which keeps each message's payload 8 days.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import json
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
_EARLIER = sa.text(
    "SELECT t.inbox_id, t.conversation_key, t.created_at, i.phone_number_id, i.kind, i.payload "
    "FROM turns t JOIN inbox i ON i.id = t.inbox_id "
    "WHERE t.role = 'user' AND i.kind IN ('image', 'audio', 'video', 'document', 'sticker')"
)
_FILLED = (
    "token",
    "conversation_key",
    "phone_number_id",
    "inbox_id",
    "role",
    "kind",
    "media_id",
    "mime_type",
    "sha256",
    "filename",
    "voice",
    "created_at",
)


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
    rows = [row for row in map(_earlier, op.get_bind().execute(_EARLIER)) if row]
    if rows:
        op.bulk_insert(sa.table("media", *(sa.column(name) for name in _FILLED)), rows)


def downgrade() -> None:
    op.drop_table("media")


def _text(value: Any, limit: int) -> str | None:
    """A payload's string as every database takes it, or None."""
    if not isinstance(value, str) or not value:
        return None
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")[:limit] or None


def _earlier(row: Any) -> dict[str, Any] | None:
    """The media row of a customer's turn written before this step, from its inbox payload."""
    try:
        body = json.loads(row.payload).get(row.kind)
    except (ValueError, AttributeError):
        return None
    media_id = _text(body.get("id"), 255) if isinstance(body, dict) else None
    if media_id is None or row.kind not in _MEDIA_KINDS:
        return None
    mime_type = (_text(body.get("mime_type"), 128) or "").split(";", 1)[0].strip().lower()
    return {
        "token": secrets.token_urlsafe(18),
        "conversation_key": row.conversation_key,
        "phone_number_id": row.phone_number_id,
        "inbox_id": row.inbox_id,
        "role": "user",
        "kind": row.kind,
        "media_id": media_id,
        "mime_type": mime_type,
        "sha256": _text(body.get("sha256"), 128),
        "filename": _text(body.get("filename"), 255),
        "voice": body.get("voice") is True,
        "created_at": row.created_at,
    }
