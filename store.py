"""Persistence: the inbox of inbound messages (dedup, claims, state) and the conversation turns."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from llm import Role, Turn
from schema import (
    MIGRATION_LOCK,
    alembic_config,
    create_engine,
    current_revision,
    inbox,
    rate_notices,
    turns,
    upgrade_to,
)
from whatsapp import InboundMessage, clean_text

log = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 3
_DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE for a transaction failed to break a deadlock


def _is_deadlock(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == _DEADLOCK_DETECTED


PENDING, PROCESSING, DONE, FAILED, EXPIRED = "pending", "processing", "done", "failed", "expired"
UNFINISHED = (PENDING, PROCESSING)


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


# The inbox keeps every message for Meta's 7 days of redelivery, so the queries that find work
# must only ever touch unfinished rows: `state IN (...)` stands alone beside the other
# conditions, where the indexes on (state, id) and (user_key, state) can serve it
# (tests/test_store.py checks the plans).


def _claimable() -> ColumnElement[bool]:
    """Waiting for an answer: never claimed, or claimed by a worker whose lease ran out."""
    return and_(
        inbox.c.state.in_(UNFINISHED),
        or_(inbox.c.state == PENDING, inbox.c.lease_until < bindparam("now")),
    )


def _blocked() -> ColumnElement[bool]:
    """True for an inbox row whose user has an earlier unanswered or a live claimed message."""
    other = inbox.alias("other")
    earlier = or_(
        other.c.sent_at < inbox.c.sent_at,
        and_(other.c.sent_at == inbox.c.sent_at, other.c.id < inbox.c.id),
    )
    live_claim = and_(
        other.c.id != inbox.c.id,
        other.c.state == PROCESSING,
        other.c.lease_until >= bindparam("now"),
    )
    return exists().where(
        other.c.user_key == inbox.c.user_key,
        other.c.state.in_(UNFINISHED),
        or_(earlier, live_claim),
    )


# Built once: SQLAlchemy then reuses their compiled form, which matters on the hot path.
_READY = (
    select(inbox.c.id, inbox.c.user_key)
    .where(_claimable(), ~_blocked())
    # `+ 0`: with some ANALYZE statistics SQLite would rather walk the whole table in id order
    # than sort; sorting the few unfinished rows is cheap on either database.
    .order_by(inbox.c.id + literal_column("0"))
    .limit(bindparam("limit"))
)
_CLAIM_VALUES = {
    "state": PROCESSING,
    "owner": bindparam("owner"),
    "lease_until": bindparam("lease_until"),
    "attempts": inbox.c.attempts + 1,
    "updated_at": bindparam("now"),
}
_CLAIM = (
    update(inbox)
    .where(inbox.c.id == bindparam("row_id"), _claimable(), ~_blocked())
    .values(_CLAIM_VALUES)
    .returning(*inbox.c)
)
# SQLite: a whole batch in one statement (one writer at a time makes it atomic per row).
_CLAIM_BATCH = (
    update(inbox)
    .where(inbox.c.id.in_(bindparam("row_ids", expanding=True)), _claimable(), ~_blocked())
    .values(_CLAIM_VALUES)
    .returning(*inbox.c)
)
# A closed message's turns, only while its claim is still ours, once per message and role.
_ADD_TURN = select(
    inbox.c.id,
    inbox.c.user_key,
    bindparam("role", type_=String),
    bindparam("text", type_=Text),
    bindparam("now", type_=Float),
).where(inbox.c.id == bindparam("row_id"), inbox.c.owner == bindparam("owner"))
_TURN_COLUMNS = ["inbox_id", "user_key", "role", "text", "created_at"]
# Writes to a claimed message, each only while the claim is still ours.
_OWNED = update(inbox).where(
    inbox.c.id == bindparam("row_id"), inbox.c.owner == bindparam("claimed_by")
)
_FINISH = _OWNED.values(
    state=bindparam("new_state"),
    error=bindparam("reason"),
    owner=None,
    lease_until=None,
    updated_at=bindparam("now"),
)
_SET_OWNED = {  # one column of a claimed message: the lease, the saved reply, the parts sent
    column: _OWNED.values({column: bindparam("value"), "updated_at": bindparam("now")})
    for column in ("lease_until", "reply", "parts_sent")
}


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
        # SQLite: the one connection this store works on, lent to one task at a time.
        self._sqlite_conn: AsyncConnection | None = None
        self._sqlite_turn = asyncio.Lock()
        # Group commit of webhooks: rows waiting for the next INSERT, and the task writing them.
        self._waiting: list[tuple[list[dict[str, Any]], asyncio.Future[list[str]]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._record = (
            self._insert(inbox)
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(inbox.c.message_id)
        )
        self._add_turns = (
            self._insert(turns)
            .from_select(_TURN_COLUMNS, _ADD_TURN)
            .on_conflict_do_nothing(index_elements=["inbox_id", "role"])
        )

    @classmethod
    async def open(
        cls, database_url: str, *, migrate: bool = True, checkpoints: bool = True
    ) -> Store:
        """Connect, then apply the migrations or check that someone else did."""
        store = cls(create_engine(database_url, checkpoints=checkpoints))
        try:
            await (store.migrate() if migrate else store.check_schema())
        except BaseException:
            await store.close()
            raise
        return store

    async def check_schema(self) -> None:
        async with self.engine.connect() as conn:
            current = await conn.run_sync(current_revision)
        from alembic.script import ScriptDirectory

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
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            await conn.run_sync(upgrade_to, revision)

    async def close(self) -> None:
        if self._recorder is not None:
            await asyncio.wait([self._recorder], timeout=10)
        async with self._sqlite_turn:
            if self._sqlite_conn is not None:
                await self._sqlite_conn.close()
                self._sqlite_conn = None
        await self.engine.dispose()

    def _connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for one piece of work (on SQLite, autocommit: see schema.create_engine)."""
        return self._sqlite_connection() if self.is_sqlite else self.engine.connect()

    @asynccontextmanager
    async def _sqlite_connection(self) -> AsyncIterator[AsyncConnection]:
        """The store's SQLite connection, kept open and lent to one task at a time.

        The engine pools a single connection anyway (SQLite has one writer); checking it out
        and back in for every piece of work cost more CPU than the statements run on it (about
        0.4 ms of the 1.5 ms of a one-statement operation). After an error the connection is
        closed and the next piece of work opens a fresh one, as a pool would hand out.
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

    def _write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for writes that are atomic on their own.

        SQLite: autocommit (see schema.create_engine), so each statement holds the write lock
        only while it runs. PostgreSQL: one transaction around the block.
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

    async def ping(self) -> None:
        """Whether the database answers, on a connection from the engine's pool.

        On SQLite not the store's kept connection, so a probe never queues behind the store's
        work (the pool's overflow connection serves it).
        """
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def record_messages(self, messages: Sequence[InboundMessage]) -> list[str]:
        """Insert each message once; returns the ids that were new (a redelivery is a no-op).

        Returns once the rows are written (committed), so a 200 to Meta means nothing is lost.
        """
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
                # ASCII escapes keep any lone surrogate or NUL storable as text.
                "payload": json.dumps(m.raw),
                "sent_at": m.timestamp,
                "received_at": now,
                "state": PENDING,
                "attempts": 0,
                "parts_sent": 0,
                "updated_at": now,
            }
            for m in {m.id: m for m in messages}.values()
        ]
        done: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_waiting())
        return await done

    async def _record_waiting(self) -> None:
        """Write every waiting webhook's rows in one statement, again while more arrived.

        Under load, webhooks that arrive while one INSERT runs share the next one, so the
        database sees a few statements per second instead of one per webhook; alone, a
        webhook is written at once. Each caller gets back only its own new ids.
        """
        while self._waiting:
            batch, self._waiting = self._waiting, []
            unique = {row["message_id"]: row for rows, _ in batch for row in rows}
            try:
                new = await self._insert_new(list(unique.values()))
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for rows, done in batch:  # a message delivered twice in one batch is new once
                mine = [row["message_id"] for row in rows if row["message_id"] in new]
                new.difference_update(mine)
                if not done.done():
                    done.set_result(mine)

    async def _insert_new(self, rows: list[dict[str, Any]]) -> set[str]:
        """INSERT ... ON CONFLICT DO NOTHING of inbox rows; returns the message ids that were new.

        Tried again if PostgreSQL broke a deadlock by failing it: two instances inserting
        overlapping batches (Meta redelivers, and to every subscribed app) can each wait for
        an id the other holds. The retry finds the other's rows committed and skips them.
        Rows keep their arrival order (it orders a user's messages sent in the same second),
        so sorting them to avoid the deadlock was not an option.
        """
        retrying = AsyncRetrying(
            stop=stop_after_attempt(DEADLOCK_ATTEMPTS),
            retry=retry_if_exception(_is_deadlock),
            before_sleep=lambda _: log.info("inbox insert broke a deadlock; once more"),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                async with self._write() as conn:
                    result = await conn.execute(self._record, rows)
                    new = {r.message_id for r in result}
        return new

    def _insert(self, table: Table) -> Any:
        """INSERT with the dialect's ON CONFLICT support (SQLite and PostgreSQL share it)."""
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    async def claimable(self, limit: int) -> list[tuple[int, str]]:
        """(row id, user key) of messages ready to answer now, at most one per user."""
        async with self._connect() as conn:
            rows = await conn.execute(_READY, {"now": time.time(), "limit": limit})
            return [(r.id, r.user_key) for r in rows]

    async def claim(self, row_id: int, user_key: str, owner: str, lease: float) -> InboxRow | None:
        """Take one message for answering, atomically; None if someone else was first."""
        claimed = await self.claim_many([(row_id, user_key)], owner, lease)
        return claimed[0] if claimed else None

    async def claim_many(
        self, candidates: Sequence[tuple[int, str]], owner: str, lease: float
    ) -> list[InboxRow]:
        """Take messages for answering in one transaction; those someone else took are skipped.

        The checks live in each UPDATE itself, so two workers can never both win a row. On
        PostgreSQL a per-user advisory lock also serialises claims of one user's messages.
        """
        if not candidates:
            return []
        now = time.time()
        claim = {"owner": owner, "lease_until": now + lease, "now": now}
        if self.is_sqlite:
            row_ids = [row_id for row_id, _ in candidates]
            async with self._write() as conn:
                batch = (await conn.execute(_CLAIM_BATCH, {**claim, "row_ids": row_ids})).all()
            return sorted((_row(r) for r in batch), key=lambda r: r.id)
        claimed: list[InboxRow] = []
        async with self.engine.begin() as conn:
            for row_id, user_key in candidates:
                if not await self._lock_user(conn, user_key):
                    continue
                found = (await conn.execute(_CLAIM, {**claim, "row_id": row_id})).first()
                if found:
                    claimed.append(_row(found))
        return claimed

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
        return await self._set_owned(row_id, owner, "lease_until", time.time() + lease)

    async def save_reply(self, row_id: int, owner: str, reply: str) -> bool:
        """Keep the answer, so a retry after a crash sends it instead of asking again."""
        return await self._set_owned(row_id, owner, "reply", reply)

    async def mark_parts_sent(self, row_id: int, owner: str, parts_sent: int) -> bool:
        return await self._set_owned(row_id, owner, "parts_sent", parts_sent)

    async def finish(
        self,
        row_id: int,
        owner: str,
        state: str,
        *,
        error: str | None = None,
        new_turns: Sequence[tuple[Role, str]] = (),
    ) -> bool:
        """Close a claimed message and add its turns to its user's conversation.

        The turns go first, and only while the claim is ours; they are keyed by message and
        role, so if the process dies between the two writes, the retry adds them only once.
        """
        now = time.time()
        async with self._write() as conn:
            if new_turns:
                await conn.execute(
                    self._add_turns,
                    [
                        {
                            "row_id": row_id,
                            "owner": owner,
                            "role": r,
                            "text": clean_text(t),
                            "now": now,
                        }
                        for r, t in new_turns
                    ],
                )
            finished = await conn.execute(
                _FINISH,
                {
                    "row_id": row_id,
                    "claimed_by": owner,
                    "new_state": state,
                    "reason": error,
                    "now": now,
                },
            )
            return finished.rowcount == 1

    async def _set_owned(self, row_id: int, owner: str, column: str, value: object) -> bool:
        parameters = {"row_id": row_id, "claimed_by": owner, "value": value, "now": time.time()}
        async with self._write() as conn:
            result = await conn.execute(_SET_OWNED[column], parameters)
            return result.rowcount == 1

    async def release_leases(self) -> int:
        """Hand every claimed message back; only for a database no other process uses."""
        async with self._write() as conn:
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
        async with self._connect() as conn:
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
        async with self._connect() as conn:
            return await conn.scalar(select(inbox.c.state).where(inbox.c.message_id == message_id))

    async def count_unfinished(self) -> int:
        async with self._connect() as conn:
            count = await conn.scalar(select(func.count()).where(inbox.c.state.in_(UNFINISHED)))
            return int(count or 0)

    async def rate_limit(
        self, user_key: str, at: float, limits: Sequence[tuple[str, int, int]]
    ) -> str:
        """`ok`; past a limit: `notice` once per window length, otherwise `silent`.

        `limits` are (name, window length in seconds, messages allowed; 0 for no limit). The
        windows slide: messages received in the `length` seconds up to `at` are counted from
        the inbox, and the notice time is kept in the database, so every instance agrees.
        The notice's upsert decides alone (it only fires once per window), so the counts and
        it need not share a transaction.
        """
        async with self._write() as conn:
            for name, length, allowed in limits:
                if allowed <= 0:
                    continue
                count = await conn.scalar(
                    select(func.count()).where(
                        inbox.c.user_key == user_key,
                        inbox.c.received_at > at - length,
                        inbox.c.received_at <= at,
                    )
                )
                if (count or 0) <= allowed:
                    continue
                insert = self._insert(rate_notices).values(
                    user_key=user_key, window=name, notified_at=at
                )
                notified = await conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["user_key", "window"],
                        set_={"notified_at": at},
                        where=rate_notices.c.notified_at <= at - length,
                    ).returning(rate_notices.c.user_key)
                )
                return "notice" if notified.first() else "silent"
        return "ok"

    async def reset_conversation(self, user_key: str) -> int:
        """Drop the conversation context of a user; returns the number of turns removed."""
        async with self._write() as conn:
            result = await conn.execute(delete(turns).where(turns.c.user_key == user_key))
            return result.rowcount

    async def forget_user(self, user_key: str) -> None:
        """Erase what is stored about a user; message ids stay (scrubbed) for deduplication.

        Messages still waiting for an answer were written after the request and are kept.
        """
        anonymous = "forgotten:" + hashlib.sha256(user_key.encode()).hexdigest()[:32]
        async with self.transaction() as conn:
            await conn.execute(delete(turns).where(turns.c.user_key == user_key))
            await conn.execute(delete(rate_notices).where(rate_notices.c.user_key == user_key))
            await conn.execute(
                update(inbox)
                .where(inbox.c.user_key == user_key, inbox.c.state.not_in(UNFINISHED))
                .values(user_key=anonymous, recipient="", text=None, payload="{}", reply=None)
            )

    async def purge(self, *, turns_before: float, inbox_before: float) -> tuple[int, int]:
        """Delete old turns and old finished inbox rows; returns how many of each went."""
        async with self.transaction() as conn:
            old_turns = await conn.execute(delete(turns).where(turns.c.created_at < turns_before))
            old_rows = await conn.execute(
                delete(inbox).where(
                    inbox.c.received_at < inbox_before, inbox.c.state.not_in(UNFINISHED)
                )
            )
            await conn.execute(
                delete(rate_notices).where(rate_notices.c.notified_at < inbox_before)
            )
            return old_turns.rowcount, old_rows.rowcount
