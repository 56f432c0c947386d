"""Conversations are per business: `user_key` becomes `conversation_key`, `<number id>:<user>`.

The same person writing to two businesses of one deployment has two histories, states and rate
limits. Every existing row belongs to the business it was written for: inbox rows carry its
phone number id; turns take their message's, and those whose message is gone (and rate-limit
notices) take the business of PHONE_NUMBER_ID, the only one there was before this revision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: dict[str, list[tuple[str, str, list[str]]]] = {  # table: [(old, new, columns)]
    "inbox": [
        ("ix_inbox_user_state", "ix_inbox_conversation_state", ["conversation_key", "state"]),
        (
            "ix_inbox_user_received",
            "ix_inbox_conversation_received",
            ["conversation_key", "received_at"],
        ),
    ],
    "turns": [("ix_turns_user_id", "ix_turns_conversation_id", ["conversation_key", "id"])],
}


def default_phone_number_id() -> str:
    """The business the rows written before this revision belong to, where a row cannot say."""
    config = op.get_context().config
    given = config.attributes.get("default_phone_number_id") if config is not None else None
    if given or os.environ.get("PHONE_NUMBER_ID"):
        return str(given or os.environ["PHONE_NUMBER_ID"]).strip()
    most_common = op.get_bind().execute(
        sa.text(
            "SELECT phone_number_id FROM inbox GROUP BY phone_number_id "
            "ORDER BY count(*) DESC LIMIT 1"
        )
    )
    return str(most_common.scalar() or "")


def rename(old_column: str, new_column: str, old_index: int, new_index: int) -> None:
    """The key column renamed (and widened to hold the business's id), its indexes too."""
    old_type, new_type = (
        (sa.String(255), sa.String(320))
        if new_column == "conversation_key"
        else (sa.String(320), sa.String(255))
    )
    for table in ("inbox", "turns", "rate_notices"):
        with op.batch_alter_table(table) as batch:
            for index in INDEXES.get(table, []):
                batch.drop_index(index[0] if old_index == 0 else index[1])
            batch.alter_column(
                old_column, new_column_name=new_column, type_=new_type, existing_type=old_type
            )
        for index in INDEXES.get(table, []):
            columns = [new_column if c == "conversation_key" else c for c in index[2]]
            op.create_index(index[0] if new_index == 0 else index[1], table, columns)


def upgrade() -> None:
    default = default_phone_number_id()
    rename("user_key", "conversation_key", 0, 1)
    op.execute("UPDATE inbox SET conversation_key = phone_number_id || ':' || conversation_key")
    op.execute(
        sa.text(
            "UPDATE turns SET conversation_key = COALESCE("
            "(SELECT inbox.phone_number_id FROM inbox WHERE inbox.id = turns.inbox_id), :default"
            ") || ':' || conversation_key"
        ).bindparams(default=default)
    )
    op.execute(
        sa.text(
            "UPDATE rate_notices SET conversation_key = :default || ':' || conversation_key"
        ).bindparams(default=default)
    )


def downgrade() -> None:
    strip_business_prefix()
    rename("conversation_key", "user_key", 1, 0)


def strip_business_prefix() -> None:
    """`<phone number id>:<user>` back to `<user>` (a phone number id has no colon)."""
    bind = op.get_bind()
    position = (
        "instr(conversation_key, ':')"
        if bind.dialect.name == "sqlite"
        else ("strpos(conversation_key, ':')")
    )
    for table in ("inbox", "turns", "rate_notices"):
        op.execute(
            f"UPDATE {table} SET conversation_key = "  # noqa: S608 - literal table names
            f"substr(conversation_key, {position} + 1) WHERE {position} > 0"
        )
