"""The database schema: the tables, and the Alembic migrations that build them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
)
from sqlalchemy.engine import Connection

if TYPE_CHECKING:  # Alembic is loaded only to migrate: worker processes never need it
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 7_245_001  # PostgreSQL advisory lock id: one instance migrates at a time

_Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

metadata = MetaData()

inbox = Table(
    "inbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("conversation_key", String(320), nullable=False),
    Column("recipient", String(255), nullable=False),
    Column("phone_number_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=True),
    Column("payload", Text, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("reply", Text, nullable=True),
    Column("parts_sent", Integer, nullable=False),
    Column("error", String(255), nullable=True),
    Column("updated_at", Float, nullable=False),
    # The user's WhatsApp profile name as the webhook gave it (for the console's list).
    Column("profile_name", String(255), nullable=True),
    Index("ix_inbox_conversation_state", "conversation_key", "state"),
    Index("ix_inbox_state_id", "state", "id"),
    Index("ix_inbox_received_at", "received_at"),
    Index("ix_inbox_conversation_received", "conversation_key", "received_at"),
)

# When each user was last told they are over a rate limit, per window ("minute", "day").
rate_notices = Table(
    "rate_notices",
    metadata,
    Column("conversation_key", String(320), primary_key=True),
    Column("window", String(8), primary_key=True),
    Column("notified_at", Float, nullable=False),
)

# A conversation's transcript: what the user and the assistant (or an operator, its `author`)
# said, which Gemini gets back as history, and events (role "event": a handoff asked for, taken
# over, handed back, a reset), which it does not.
turns = Table(
    "turns",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("conversation_key", String(320), nullable=False),
    Column("role", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    # The inbox message this turn belongs to: closing a message adds its turns only once.
    Column("inbox_id", BigInteger, nullable=True),
    Column("author", String(64), nullable=True),  # the operator who wrote it or did it
    Column("detail", String(255), nullable=True),  # an event's reason
    Column("sources", Text, nullable=True),  # JSON list of the document titles Gemini used
    # JSON list of the business's API calls an answer made: [{name, status, error, ms}]
    Column("tool_calls", Text, nullable=True),
    Index("ix_turns_conversation_id", "conversation_key", "id"),
    Index("ux_turns_inbox_role", "inbox_id", "role", unique=True),
    Index("ix_turns_created_at", "created_at"),
)

# The console's operators. `businesses`: JSON list of the business names an operator serves
# (empty for the admin, who sees every business).
operators = Table(
    "operators",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("businesses", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Console sign-ins. `id` is the SHA-256 (hex) of the cookie's random token, never the token.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("operator_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Index("ix_console_sessions_operator", "operator_id"),
    Index("ix_console_sessions_expires_at", "expires_at"),
)

# Failed console sign-ins, counted to throttle guessing. `username` and `address` hold SHA-256
# hashes (hex) of the name tried and of the client address, which is all a count needs.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("failed_at", Float, nullable=False),
    Index("ix_login_failures_username", "username", "failed_at"),
    Index("ix_login_failures_address", "address", "failed_at"),
    Index("ix_login_failures_failed_at", "failed_at"),
)


# Who answers each conversation, and what the console lists it by. One row per conversation,
# written when one of its messages is closed and when an operator acts on it.
conversations = Table(
    "conversations",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("conversation_key", String(320), nullable=False, unique=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("user_id", String(255), nullable=False),  # wa_id, or the business-scoped user id
    Column("recipient", String(255), nullable=False),  # where replies go
    Column("profile_name", String(255), nullable=True),
    Column("state", String(16), nullable=False),  # assistant, waiting, operator
    Column("operator", String(64), nullable=True),
    Column("state_since", Float, nullable=False),
    Column("last_user_at", Float, nullable=True),  # opens WhatsApp's 24-hour window
    Column("last_operator_at", Float, nullable=True),
    Column("last_activity_at", Float, nullable=False),
    Index("ix_conversations_activity", "last_activity_at"),
    Index("ix_conversations_state_activity", "state", "last_activity_at"),
)


# Each business's Gemini File Search store: its name, so every instance and restart uses the same
# one, and how many documents it holds, which decides whether answers search it.
knowledge_stores = Table(
    "knowledge_stores",
    metadata,
    Column("phone_number_id", String(64), primary_key=True),
    Column("store_name", String(255), nullable=False),
    Column("documents", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)


# Business tokens Meta refused (Graph error 190: expired or invalid), by a hash of the token:
# its business's messages are not answered, and /ready says so, until the token is replaced.
refused_tokens = Table(
    "refused_tokens",
    metadata,
    Column("phone_number_id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("refused_at", Float, nullable=False),
)


# What each business's customers asked and what answering them cost, per UTC day: the console's
# Usage page, and the daily budget every instance checks.
usage_days = Table(
    "usage_days",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("phone_number_id", String(64), primary_key=True),
    Column("messages", Integer, nullable=False),
    Column("answers", Integer, nullable=False),
    Column("handoffs", Integer, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("thinking_tokens", BigInteger, nullable=False),
    Column("tts_tokens", BigInteger, nullable=False),
    Column("searches", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    # Tokens File Search embedded indexing documents (estimated from their size).
    Column("embedding_tokens", BigInteger, nullable=False, server_default="0"),
)

# An answer's worst-case cost, held against the daily budgets while it is worked on: it counts
# while its inbox row is processing under the same owner's lease, and goes when the row closes
# (storage/holds.py).
budget_holds = Table(
    "budget_holds",
    metadata,
    Column("inbox_id", BigInteger, primary_key=True, autoincrement=False),
    Column("owner", String(64), nullable=False),
    Column("phone_number_id", String(64), nullable=False),
    Column("amount_usd", Float, nullable=False),
    Column("held_at", Float, nullable=False),
)

# Gemini tokens each user's messages used per UTC day (USER_DAILY_TOKEN_LIMIT).
user_days = Table(
    "user_days",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("user_hash", String(64), primary_key=True),  # sha256 of the conversation key
    Column("tokens", BigInteger, nullable=False),
)

# When a budget first bit on a day ("all" or a business's number id): logged once per day.
budget_notices = Table(
    "budget_notices",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("scope", String(320), primary_key=True),
)


# Every message the service sent, by the id Meta gave it (`wamid`), and how far it got: Meta's
# status events move it forward (storage/delivery.py). A transcript line finds its messages by
# `inbox_id` (an answer to that inbound message) or `turn_id` (an operator's message, a template).
sent_messages = Table(
    "sent_messages",
    metadata,
    Column("wamid", String(255), primary_key=True),
    Column("conversation_key", String(320), nullable=False),
    Column("phone_number_id", String(64), nullable=False),
    Column("inbox_id", BigInteger, nullable=True),
    Column("turn_id", BigInteger, nullable=True),
    Column("kind", String(16), nullable=False),  # text, audio, template
    Column("status", String(16), nullable=True),  # None until Meta's first status event
    Column("rank", Integer, nullable=False),  # the status's stage: only ever grows
    Column("error_code", Integer, nullable=True),
    Column("error_title", String(255), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_sent_messages_inbox", "inbox_id"),
    Index("ix_sent_messages_turn", "turn_id"),
    Index("ix_sent_messages_conversation", "conversation_key"),
    Index("ix_sent_messages_created_at", "created_at"),
)


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to(
    connection: Connection, revision: str, phone_number_id: str | None = None
) -> tuple[str | None, str | None]:
    """Migrate; `phone_number_id`: the business that rows older than tenants belong to.
    Returns the revisions before and after."""
    from alembic import command

    config = alembic_config(connection)
    config.attributes["default_phone_number_id"] = phone_number_id
    tables = inspect(connection).get_table_names()
    if "inbox" in tables and "alembic_version" not in tables:
        command.stamp(config, "0001")  # created by create_all before migrations existed
    before = current_revision(connection)
    command.upgrade(config, revision)
    return before, current_revision(connection)


def head_revision() -> str | None:
    """The newest migration this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
