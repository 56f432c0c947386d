"""Persistence: the inbox of inbound messages (dedup, claims, state) and the conversation turns."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import ColumnElement

from llm import Role, Turn
from whatsapp import InboundMessage

log = logging.getLogger(__name__)

PENDING, PROCESSING, DONE, FAILED, EXPIRED = "pending", "processing", "done", "failed", "expired"
UNFINISHED = (PENDING, PROCESSING)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 7_245_001  # PostgreSQL advisory lock id: one instance migrates at a time

_Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

metadata = MetaData()

inbox = Table(
    "inbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("user_key", String(255), nullable=False),
    Column("recipient", String(255), nullable=False),
    Column("phone_number_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=True),
    Column("payload", Text, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("state", String(16), nullable=False, default=PENDING),
    Column("attempts", Integer, nullable=False, default=0),
    Column("owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("reply", Text, nullable=True),
    Column("parts_sent", Integer, nullable=False, default=0),
    Column("error", String(255), nullable=True),
    Column("updated_at", Float, nullable=False),
    Index("ix_inbox_user_state", "user_key", "state"),
    Index("ix_inbox_state_id", "state", "id"),
    Index("ix_inbox_received_at", "received_at"),
)

turns = Table(
    "turns",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("user_key", String(255), nullable=False),
    Column("role", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_turns_user_id", "user_key", "id"),
    Index("ix_turns_created_at", "created_at"),
)


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A claimed inbound message, with what earlier attempts already did for it."""

    id: int
    message_id: str
    user_key: str
    recipient: str
    kind: str
    text: str | None
    payload: dict[str, Any]
    sent_at: int
    received_at: float
    attempts: int
    reply: str | None
    parts_sent: int


def async_database_url(url: str) -> str:
    """Map `sqlite://` and `postgres(ql)://` URLs onto their async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgres", "postgresql"):
        query = dict(parsed.query)
        if "sslmode" in query:  # libpq spelling, as Render and others hand it out
            query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(drivername="postgresql+asyncpg", query=query)
    return parsed.render_as_string(hide_password=False)


def _ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; busy_timeout waits instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    """The async engine; SQL parameters (message text, numbers) are kept out of error logs."""
    url = async_database_url(database_url)
    if make_url(url).get_backend_name() == "sqlite":
        _ensure_sqlite_directory(url)
        engine = create_async_engine(url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(
        url, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
    )


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config(connection)
    tables = inspect(connection).get_table_names()
    if "inbox" in tables and "alembic_version" not in tables:
        command.stamp(config, "0001")  # created by create_all before migrations existed
    command.upgrade(config, revision)


def _claimable(table: Any, now: float) -> ColumnElement[bool]:
    """Waiting for an answer: never claimed, or claimed by a worker whose lease ran out."""
    return or_(
        table.c.state == PENDING,
        and_(table.c.state == PROCESSING, table.c.lease_until < now),
    )


def _blocked(now: float) -> ColumnElement[bool]:
    """True for an inbox row whose user has an earlier unanswered or a live claimed message."""
    other = inbox.alias("other")
    earlier_unfinished = and_(
        other.c.state.in_(UNFINISHED),
        or_(
            other.c.sent_at < inbox.c.sent_at,
            and_(other.c.sent_at == inbox.c.sent_at, other.c.id < inbox.c.id),
        ),
    )
    live_claim = and_(
        other.c.id != inbox.c.id, other.c.state == PROCESSING, other.c.lease_until >= now
    )
    return exists().where(other.c.user_key == inbox.c.user_key, or_(earlier_unfinished, live_claim))


def _row(values: Any) -> InboxRow:
    return InboxRow(
        id=values.id,
        message_id=values.message_id,
        user_key=values.user_key,
        recipient=values.recipient,
        kind=values.kind,
        text=values.text,
        payload=json.loads(values.payload),
        sent_at=values.sent_at,
        received_at=values.received_at,
        attempts=values.attempts,
        reply=values.reply,
        parts_sent=values.parts_sent,
    )


class Store:
    """Every read and write of the service's state, over one async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, database_url: str, *, migrate: bool = True) -> Store:
        """Connect, then apply the migrations or check that someone else did."""
        store = cls(create_engine(database_url))
        try:
            await (store.migrate() if migrate else store.check_schema())
        except BaseException:
            await store.close()
            raise
        return store

    async def check_schema(self) -> None:
        async with self.engine.connect() as conn:
            current = await conn.run_sync(_current_revision)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        if current != head:
            raise RuntimeError(
                f"the database schema is at revision {current}, not {head}: "
                "run `alembic upgrade head` or set AUTO_MIGRATE=true"
            )

    async def migrate(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to `revision`, one instance at a time."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade, revision)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def record_messages(self, messages: Sequence[InboundMessage]) -> list[str]:
        """Insert each message once; returns the ids that were new (a redelivery is a no-op)."""
        if not messages:
            return []
        now = time.time()
        rows = [
            {
                "message_id": m.id,
                "user_key": m.user_key,
                "recipient": m.recipient,
                "phone_number_id": m.phone_number_id,
                "kind": m.kind.value,
                "text": m.text,
                "payload": json.dumps(m.raw, ensure_ascii=False),
                "sent_at": m.timestamp,
                "received_at": now,
                "state": PENDING,
                "attempts": 0,
                "parts_sent": 0,
                "updated_at": now,
            }
            for m in {m.id: m for m in messages}.values()
        ]
        dialect_insert = postgresql.insert if not self.is_sqlite else sqlite.insert
        statement = (
            dialect_insert(inbox)
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(inbox.c.message_id)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(statement, rows)
            return [r.message_id for r in result]

    async def claimable(self, limit: int) -> list[tuple[int, str]]:
        """(row id, user key) of messages ready to answer now, at most one per user."""
        now = time.time()
        query = (
            select(inbox.c.id, inbox.c.user_key)
            .where(_claimable(inbox, now), ~_blocked(now))
            .order_by(inbox.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [(r.id, r.user_key) for r in await conn.execute(query)]

    async def claim(self, row_id: int, user_key: str, owner: str, lease: float) -> InboxRow | None:
        """Take a message for answering, atomically; None if someone else was first.

        The checks live in the UPDATE itself, so two workers can never both win. On
        PostgreSQL a per-user advisory lock also serialises claims of one user's messages.
        """
        now = time.time()
        statement = (
            update(inbox)
            .where(inbox.c.id == row_id, _claimable(inbox, now), ~_blocked(now))
            .values(
                state=PROCESSING,
                owner=owner,
                lease_until=now + lease,
                attempts=inbox.c.attempts + 1,
                updated_at=now,
            )
            .returning(*inbox.c)
        )
        async with self.engine.begin() as conn:
            if not await self._lock_user(conn, user_key):
                return None
            found = (await conn.execute(statement)).first()
        return _row(found) if found else None

    async def _lock_user(self, conn: AsyncConnection, user_key: str) -> bool:
        """PostgreSQL: hold the user's lock for this transaction, or skip if another has it.

        Claims must be exclusive per user, not only per row, so a per-user advisory lock plays
        the part `FOR UPDATE SKIP LOCKED` plays for a plain job queue. SQLite runs one writer at
        a time, so the conditional UPDATE alone is atomic there.
        """
        if self.is_sqlite:
            return True
        locked = await conn.scalar(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": user_key},
        )
        return bool(locked)

    async def extend_lease(self, row_id: int, owner: str, lease: float) -> bool:
        return await self._update_owned(row_id, owner, lease_until=time.time() + lease)

    async def save_reply(self, row_id: int, owner: str, reply: str) -> bool:
        """Keep the answer, so a retry after a crash sends it instead of asking again."""
        return await self._update_owned(row_id, owner, reply=reply)

    async def mark_parts_sent(self, row_id: int, owner: str, parts_sent: int) -> bool:
        return await self._update_owned(row_id, owner, parts_sent=parts_sent)

    async def finish(
        self,
        row_id: int,
        owner: str,
        state: str,
        *,
        error: str | None = None,
        new_turns: Sequence[tuple[str, Role, str]] = (),
    ) -> bool:
        """Close a claimed message and add its turns to the conversation, in one transaction."""
        now = time.time()
        async with self.engine.begin() as conn:
            finished = await conn.execute(
                update(inbox)
                .where(inbox.c.id == row_id, inbox.c.owner == owner)
                .values(state=state, error=error, owner=None, lease_until=None, updated_at=now)
            )
            if finished.rowcount != 1:
                return False
            if new_turns:
                await conn.execute(
                    insert(turns),
                    [
                        {"user_key": k, "role": r, "text": t, "created_at": now}
                        for k, r, t in new_turns
                    ],
                )
        return True

    async def _update_owned(self, row_id: int, owner: str, **values: Any) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(inbox)
                .where(inbox.c.id == row_id, inbox.c.owner == owner)
                .values(updated_at=time.time(), **values)
            )
            return result.rowcount == 1

    async def release_leases(self) -> int:
        """Hand every claimed message back; only for a database no other process uses."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(inbox)
                .where(inbox.c.state == PROCESSING)
                .values(state=PENDING, owner=None, lease_until=None)
            )
            return result.rowcount

    async def history(self, user_key: str, max_turns: int, max_chars: int) -> list[Turn]:
        """The latest turns of a conversation, oldest first, within both bounds."""
        if max_turns <= 0 or max_chars <= 0:
            return []
        query = (
            select(turns.c.role, turns.c.text)
            .where(turns.c.user_key == user_key)
            .order_by(turns.c.id.desc())
            .limit(max_turns)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        kept: list[Turn] = []
        total = 0
        for row in rows:
            total += len(row.text)
            if total > max_chars:
                break
            kept.append(Turn(row.role, row.text))
        return kept[::-1]

    async def state_of(self, message_id: str) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.scalar(select(inbox.c.state).where(inbox.c.message_id == message_id))

    async def count_unfinished(self) -> int:
        async with self.engine.connect() as conn:
            count = await conn.scalar(select(func.count()).where(inbox.c.state.in_(UNFINISHED)))
            return int(count or 0)

    async def reset_conversation(self, user_key: str) -> int:
        """Drop the conversation context of a user; returns the number of turns removed."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(turns).where(turns.c.user_key == user_key))
            return result.rowcount

    async def forget_user(self, user_key: str) -> None:
        """Erase what is stored about a user; message ids stay (scrubbed) for deduplication."""
        anonymous = "forgotten:" + hashlib.sha256(user_key.encode()).hexdigest()[:32]
        async with self.engine.begin() as conn:
            await conn.execute(delete(turns).where(turns.c.user_key == user_key))
            await conn.execute(
                update(inbox)
                .where(inbox.c.user_key == user_key, inbox.c.state.not_in(UNFINISHED))
                .values(user_key=anonymous, recipient="", text=None, payload="{}", reply=None)
            )
            await conn.execute(
                update(inbox)
                .where(inbox.c.user_key == user_key, inbox.c.state.in_(UNFINISHED))
                .values(text=None, payload="{}", reply=None)
            )

    async def purge(self, *, turns_before: float, inbox_before: float) -> tuple[int, int]:
        """Delete old turns and old finished inbox rows; returns how many of each went."""
        async with self.engine.begin() as conn:
            old_turns = await conn.execute(delete(turns).where(turns.c.created_at < turns_before))
            old_rows = await conn.execute(
                delete(inbox).where(
                    inbox.c.received_at < inbox_before, inbox.c.state.not_in(UNFINISHED)
                )
            )
            return old_turns.rowcount, old_rows.rowcount
