"""The database schema: tables, engines for SQLite and PostgreSQL, and Alembic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    event,
    inspect,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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
    Column("user_key", String(255), nullable=False),
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
    Index("ix_inbox_user_state", "user_key", "state"),
    Index("ix_inbox_state_id", "state", "id"),
    Index("ix_inbox_received_at", "received_at"),
    Index("ix_inbox_user_received", "user_key", "received_at"),
)

# When each user was last told they are over a rate limit, per window ("minute", "day").
rate_notices = Table(
    "rate_notices",
    metadata,
    Column("user_key", String(255), primary_key=True),
    Column("window", String(8), primary_key=True),
    Column("notified_at", Float, nullable=False),
)

turns = Table(
    "turns",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("user_key", String(255), nullable=False),
    Column("role", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    # The inbox message this turn belongs to: closing a message adds its turns only once.
    Column("inbox_id", BigInteger, nullable=True),
    Index("ix_turns_user_id", "user_key", "id"),
    Index("ux_turns_inbox_role", "inbox_id", "role", unique=True),
    Index("ix_turns_created_at", "created_at"),
)


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


def _tune_sqlite(checkpoints: bool) -> Any:
    def tune(dbapi_connection: Any, _record: Any) -> None:
        """WAL lets readers run beside the writer; busy_timeout waits instead of failing."""
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    return tune


def create_engine(database_url: str, *, checkpoints: bool = True) -> AsyncEngine:
    """The async engine; SQL parameters (message text, numbers) are kept out of error logs.

    `checkpoints=False` (SQLite): this connection never copies the write-ahead log back into
    the database file. The commit that crosses the log's size limit does that work, an fsync
    included; the web process leaves it to the worker processes, whose commits no one awaits.
    """
    url = async_database_url(database_url)
    if make_url(url).get_backend_name() == "sqlite":
        _ensure_sqlite_directory(url)
        # One connection, which the Store keeps (Store._sqlite_connection): SQLite has one
        # writer at a time anyway, and several connections only wait on each other's locks
        # (its busy handler sleeps in 1-100 ms steps). The overflow of one is for whoever
        # else connects while a store is open: the readiness probe, migrations, tools, tests.
        # Autocommit: each write is one statement that takes and releases the database's
        # write lock inside the driver's thread. In a transaction the lock would be held from
        # the first write to COMMIT, across event-loop turns, while every other writer (the
        # web process's webhooks included) waits. Store.transaction() opens the few real ones.
        engine = create_async_engine(
            url,
            hide_parameters=True,
            pool_size=1,
            max_overflow=1,
            isolation_level="AUTOCOMMIT",
            skip_autocommit_rollback=True,
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite(checkpoints))
        return engine
    return create_async_engine(
        url, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
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


def upgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config(connection)
    tables = inspect(connection).get_table_names()
    if "inbox" in tables and "alembic_version" not in tables:
        command.stamp(config, "0001")  # created by create_all before migrations existed
    command.upgrade(config, revision)
