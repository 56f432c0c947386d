"""Recording inbound messages: each message id once, concurrent webhooks in one INSERT."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from domain.types import MessageState
from storage.database import Database
from storage.schema import inbox
from webhook.events import InboundMessage

log = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 3
_DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE for a transaction failed to break a deadlock


def _is_deadlock(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == _DEADLOCK_DETECTED


def conversation_key(message: InboundMessage) -> str:
    """A conversation is the pair (business, user): `<phone number id>:<user's id>`."""
    return f"{message.phone_number_id}:{message.user_key}"


# The columns a recorded message sets (the others start empty).
ROW_KEYS = (
    "message_id",
    "conversation_key",
    "recipient",
    "phone_number_id",
    "kind",
    "text",
    "payload",
    "sent_at",
    "received_at",
    "state",
    "attempts",
    "parts_sent",
    "updated_at",
    "profile_name",
)


class Recorder:
    """Writes webhooks' messages into the inbox; a 200 to Meta waits for this and nothing else."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.clock = time.time  # when a message arrived (tests move it)
        # Group commit of webhooks: rows waiting for the next INSERT, and the task writing them.
        self._waiting: list[tuple[list[dict[str, Any]], asyncio.Future[list[str]]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._record = (
            db.insert(inbox)
            .values({key: bindparam(key) for key in ROW_KEYS})
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(inbox.c.message_id)
        )

    def prepare(self) -> None:
        """Compile the INSERT for SQLite's driver now, at start-up, rather than in the time of
        the first webhook after it."""
        if self._db.is_sqlite:
            self._db.prepared(self._record)

    async def drain(self) -> None:
        """Let a group write under way finish (at shutdown)."""
        if self._recorder is not None:
            await asyncio.wait([self._recorder], timeout=10)

    async def record(self, messages: Sequence[InboundMessage]) -> list[str]:
        """Insert each message once; returns the ids that were new (a redelivery is a no-op).

        Returns once the rows are written (committed), so a 200 to Meta means nothing is lost.
        """
        if not messages:
            return []
        now = self.clock()
        rows = [
            {
                "message_id": m.id,
                "conversation_key": conversation_key(m),
                "recipient": m.recipient,
                "phone_number_id": m.phone_number_id,
                "kind": m.kind.value,
                "text": m.text,
                # ASCII escapes keep any lone surrogate or NUL storable as text.
                "payload": json.dumps(m.raw),
                "sent_at": m.timestamp,
                "received_at": now,
                "state": MessageState.PENDING,
                "attempts": 0,
                "parts_sent": 0,
                "updated_at": now,
                "profile_name": m.profile_name[:255] if m.profile_name else None,
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
        try:  # tenacity only once a deadlock was broken: its set-up is per call
            return await self._insert_once(rows)
        except DBAPIError as exc:
            if not _is_deadlock(exc):
                raise
            log.info("inbox insert broke a deadlock; once more")
        retrying = AsyncRetrying(
            stop=stop_after_attempt(DEADLOCK_ATTEMPTS - 1),
            retry=retry_if_exception(_is_deadlock),
            before_sleep=lambda _: log.info("inbox insert broke a deadlock; once more"),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                new = await self._insert_once(rows)
        return new

    async def _insert_once(self, rows: list[dict[str, Any]]) -> set[str]:
        if self._db.is_sqlite:
            # On the driver, compiled once (Database.prepared): the statement every webhook
            # waits for, where SQLAlchemy's own per-statement work cost several times SQLite's.
            prepared = self._db.prepared(self._record)
            runs = [prepared.run(row) for row in rows]
            sql = runs[0][0]  # every row's: the statement expands no list
            returned = await self._db.each_returning(sql, [values for _, values in runs])
            return {message_id for (message_id,) in returned}
        async with self._db.write() as conn:
            result = await conn.execute(self._record, rows)
            return {r.message_id for r in result}
