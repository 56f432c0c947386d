"""Connections to the database: the async engine for SQLite or PostgreSQL, and how work gets one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.schema import Table

from storage.prepared import Prepared
from storage.schema import MIGRATION_LOCK, current_revision, head_revision, upgrade_to
from storage.sqlite_driver import OneTripConnection, one_trip_creator

log = logging.getLogger(__name__)


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
    """WAL lets readers run beside the writer; waiting for a lock instead of failing, and
    checkpoints, are the driver's (storage/sqlite_driver.py)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(database_url: str, *, checkpoints: bool = True) -> AsyncEngine:
    """The async engine; SQL parameters (message text, numbers) are kept out of error logs.

    `checkpoints=False` (SQLite): this connection never copies the write-ahead log back into
    the database file. A connection that does copies it every so many writes on its driver's
    thread (storage/sqlite_driver.py), an fsync included; the web process leaves it to the
    worker processes, whose commits no one awaits.
    """
    url = async_database_url(database_url)
    if make_url(url).get_backend_name() == "sqlite":
        _ensure_sqlite_directory(url)
        # One connection, which the Database keeps (Database._sqlite_connection): SQLite has one
        # writer at a time anyway, and several connections only wait on each other's locks
        # (SQLite's busy handler sleeps in 1-100 ms steps). The overflow of one is for whoever
        # else connects while a store is open: the readiness probe, migrations, tools, tests.
        # Autocommit: each write is one statement that takes and releases the database's
        # write lock inside the driver's thread. In a transaction the lock would be held from
        # the first write to COMMIT, across event-loop turns, while every other writer (the
        # web process's webhooks included) waits. Database.transaction() opens the few real ones.
        engine = create_async_engine(
            url,
            async_creator=one_trip_creator(url, checkpoints=checkpoints),
            hide_parameters=True,
            pool_size=1,
            max_overflow=1,
            isolation_level="AUTOCOMMIT",
            skip_autocommit_rollback=True,
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(
        url, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
    )


class Database:
    """One async engine, and the connection each piece of work runs on."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite: the one connection this process works on, lent to one task at a time.
        self._sqlite_conn: AsyncConnection | None = None
        self._sqlite_turn = asyncio.Lock()
        # The kept connection's driver (`each_returning`), and the connection it belongs to.
        self._driver: OneTripConnection | None = None
        self._driver_of: AsyncConnection | None = None
        self._prepared: dict[int, Prepared] = {}  # SQLite: `rows`' statements, compiled
        self._watchers: list[Callable[[str, Any, bool], None]] = []  # see `watched`

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """INSERT with the dialect's ON CONFLICT support (SQLite and PostgreSQL share it)."""
        return sqlite.insert(table) if self.is_sqlite else postgresql.insert(table)

    async def migrate(self, revision: str = "head", *, phone_number_id: str | None = None) -> None:
        """Apply the Alembic migrations up to `revision`, one instance at a time.

        `phone_number_id`: the business that rows written before there were several belong to.
        """
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            before, after = await conn.run_sync(upgrade_to, revision, phone_number_id)
        if before is None:
            log.info("database schema created at revision %s", after)
        elif before != after:
            log.info("database schema migrated from revision %s to %s", before, after)

    async def check_schema(self) -> None:
        """Refuse to run on a schema that is behind the code (AUTO_MIGRATE=false)."""
        async with self.engine.connect() as conn:
            current = await conn.run_sync(current_revision)
        head = head_revision()
        if current != head:
            raise RuntimeError(
                f"the database schema is at revision {current}, not {head}: "
                "run `alembic upgrade head` or set AUTO_MIGRATE=true"
            )

    async def close(self) -> None:
        async with self._sqlite_turn:
            if self._sqlite_conn is not None:
                await self._sqlite_conn.close()
                self._sqlite_conn = None
        await self.engine.dispose()

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for one piece of work (on SQLite, autocommit: see create_engine)."""
        return self._sqlite_connection() if self.is_sqlite else self.engine.connect()

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for writes that are atomic on their own.

        SQLite: autocommit (see create_engine), so each statement holds the write lock only
        while it runs. PostgreSQL: one transaction around the block.
        """
        return self._sqlite_connection() if self.is_sqlite else self.engine.begin()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Statements that must all happen or none; on SQLite they hold the write lock.

        SQLite: BEGIN IMMEDIATE takes the lock up front (a deferred transaction that reads,
        then writes, can be refused outright in WAL mode when another writer went first).
        """
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._sqlite_connection() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await asyncio.shield(conn.exec_driver_sql("ROLLBACK"))
                raise
            await conn.exec_driver_sql("COMMIT")

    @asynccontextmanager
    async def _sqlite_connection(self) -> AsyncIterator[AsyncConnection]:
        """The kept SQLite connection, lent to one task at a time.

        The engine pools a single connection anyway (SQLite has one writer); checking it out
        and back in for every piece of work costs more CPU than the statements run on it
        (bench/RESULTS.md, section 5). After an error the connection is closed and the next
        piece of work opens a fresh one, as a pool would hand out.
        """
        async with self._sqlite_turn:
            conn = self._sqlite_conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._sqlite_conn = await self.engine.connect()
            try:
                yield conn
            except BaseException:
                self._sqlite_conn = None
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close())
                raise

    def prepared(self, statement: Executable) -> Prepared:
        """SQLite: `statement` compiled once for the driver (`rows`, `each_returning`)."""
        prepared = self._prepared.get(id(statement))
        if prepared is None or prepared.statement is not statement:
            prepared = self._prepared[id(statement)] = Prepared.of(statement, self.engine.dialect)
        return prepared

    async def rows(
        self, statement: Executable, parameters: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows of a statement kept for the process's life (a module's or a keeper's), its
        values named `bindparam`s given in `parameters`, as plain tuples.

        SQLite: compiled once (its literal values and lists kept) and run on the driver, past
        SQLAlchemy's execution context, whose per-statement work costs several times SQLite's
        own on the answering side's small statements (bench/RESULTS.md, section 5). Only for
        columns whose values SQLite gives back as Python has them (text, numbers); PostgreSQL:
        through SQLAlchemy, in a transaction of its own.
        """
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                result = await conn.execute(statement, dict(parameters))
                return result.all() if result.returns_rows else []
        sql, values = self.prepared(statement).run(parameters)
        return await self.each_returning(sql, [values])

    async def each_returning(self, sql: str, parameter_sets: Sequence[Sequence[Any]]) -> list[Any]:
        """SQLite: `sql` once per parameter set on the kept connection's driver, all or none,
        and the rows they returned (storage/sqlite_driver.py, `each_returning`)."""
        async with self._sqlite_connection() as conn:
            driver = self._driver
            if driver is None or self._driver_of is not conn:
                raw = await conn.get_raw_connection()
                driver = self._driver = cast(OneTripConnection, raw.driver_connection)
                self._driver_of = conn
            for seen in self._watchers:
                for parameters in parameter_sets:
                    seen(sql, parameters, False)
            return await driver.each_returning(sql, parameter_sets)

    @contextlib.contextmanager
    def watched(self, seen: Callable[[str, Any, bool], None]) -> Iterator[None]:
        """`seen(sql, parameters, executemany)` for every statement run while this is open,
        through SQLAlchemy or on the driver: what the bench replays and the tests explain."""

        def before(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
            seen(args[2], args[3], bool(args[5]))

        event.listen(self.engine.sync_engine, "before_cursor_execute", before)
        self._watchers.append(seen)
        try:
            yield
        finally:
            self._watchers.remove(seen)
            event.remove(self.engine.sync_engine, "before_cursor_execute", before)

    async def ping(self) -> None:
        """Whether the database answers, on a connection from the engine's pool.

        On SQLite not the kept connection, so a probe never queues behind the process's work
        (the pool's overflow connection serves it).
        """
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
