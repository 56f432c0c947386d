"""The inbox of inbound messages: claims and leases, what answering saved, and closing them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from domain.types import UNFINISHED, MessageState, Role, Turn
from storage.conversations import TURN_COLUMNS, TURN_FROM_CLAIM, turn_values
from storage.database import Database
from storage.media import INBOUND_COLUMNS, INBOUND_FROM_CLAIM, MediaNote, inbound_parameters
from storage.schema import inbox, media, turns

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A claimed inbound message, with what earlier attempts already did for it."""

    id: int
    message_id: str
    conversation_key: str  # `<business phone number id>:<user's id>`
    phone_number_id: str  # the business the message was written to
    recipient: str
    kind: str
    text: str | None
    payload: dict[str, Any]
    sent_at: int
    received_at: float
    attempts: int
    reply: str | None
    parts_sent: int
    profile_name: str | None = None


_ROW_FIELDS = tuple(field.name for field in fields(InboxRow))


def row_of(values: Any) -> InboxRow:
    data = {name: getattr(values, name) for name in _ROW_FIELDS}
    data["payload"] = json.loads(data["payload"])
    return InboxRow(**data)


# The inbox keeps every message for Meta's 7 days of redelivery, so the queries that find work
# must only ever touch unfinished rows: `state IN (...)` stands alone beside the other
# conditions, where the indexes on (state, id) and (conversation_key, state) can serve it
# (tests/storage/test_inbox.py checks the plans).


def _claimable() -> ColumnElement[bool]:
    """Waiting for an answer: never claimed, or claimed by a worker whose lease ran out."""
    return and_(
        inbox.c.state.in_(UNFINISHED),
        or_(inbox.c.state == MessageState.PENDING, inbox.c.lease_until < bindparam("now")),
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
        other.c.state == MessageState.PROCESSING,
        other.c.lease_until >= bindparam("now"),
    )
    return exists().where(
        other.c.conversation_key == inbox.c.conversation_key,
        other.c.state.in_(UNFINISHED),
        or_(earlier, live_claim),
    )


# Statements are built once, at import: SQLAlchemy then reuses their compiled form.

_READY = (
    select(inbox.c.id, inbox.c.conversation_key)
    .where(_claimable(), ~_blocked())
    # `+ 0`: with some ANALYZE statistics SQLite would rather walk the whole table in id order
    # than sort; sorting the few unfinished rows is cheap on either database.
    .order_by(inbox.c.id + literal_column("0"))
    .limit(bindparam("limit"))
)

CLAIM_VALUES = {
    "state": MessageState.PROCESSING,
    "owner": bindparam("owner"),
    "lease_until": bindparam("lease_until"),
    "attempts": inbox.c.attempts + 1,
    "updated_at": bindparam("now"),
}
_CLAIM = (
    update(inbox)
    .where(inbox.c.id == bindparam("row_id"), _claimable(), ~_blocked())
    .values(CLAIM_VALUES)
    .returning(*inbox.c)
)
# SQLite: a whole batch in one statement (one writer at a time makes it atomic per row).
_CLAIM_BATCH = (
    update(inbox)
    .where(inbox.c.id.in_(bindparam("row_ids", expanding=True)), _claimable(), ~_blocked())
    .values(CLAIM_VALUES)
    .returning(*inbox.c)
)

# Writes to a claimed message, each only while the claim is still ours.
_OWNED = update(inbox).where(inbox.c.id == bindparam("row_id"), inbox.c.owner == bindparam("me"))
_SET_OWNED = {  # one column of a claimed message: the lease, the saved reply, the parts sent
    column: _OWNED.values({column: bindparam(column), "updated_at": bindparam("updated_at")})
    for column in ("lease_until", "reply", "parts_sent")
}
_FINISH = _OWNED.values(
    state=bindparam("state"),
    error=bindparam("error"),
    owner=None,
    lease_until=None,
    updated_at=bindparam("updated_at"),
)


def _later_than_the_row(table: FromClause) -> ColumnElement[bool]:
    """A message of the same user sent after the claimed one (by Meta's timestamp, then id):
    the user wrote again, and the answer then quotes the message it answers."""
    return and_(
        table.c.conversation_key == bindparam("user_key"),
        table.c.id != bindparam("row_id"),
        or_(
            table.c.sent_at > bindparam("answered_sent_at"),
            and_(
                table.c.sent_at == bindparam("answered_sent_at"), table.c.id > bindparam("row_id")
            ),
        ),
    )


_LATER = select(inbox.c.id).where(_later_than_the_row(inbox)).limit(1)
_LATER_MESSAGE = inbox.alias("later")
# The answer kept, and whether the user wrote again meanwhile, in one statement.
_SAVE_REPLY = _SET_OWNED["reply"].returning(
    exists().where(_later_than_the_row(_LATER_MESSAGE)).label("written_after")
)

_RELEASE = (
    update(inbox)
    .where(inbox.c.state == MessageState.PROCESSING)
    .values(state=MessageState.PENDING, owner=None, lease_until=None)
)


class Inbox:
    """Recorded messages answered once each, in order per user, by whoever claims them."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # What a claimed message adds: its turns and its customer's file (a burst's too).
        self.insert_turns = (
            db.insert(turns)
            .from_select(TURN_COLUMNS, TURN_FROM_CLAIM)
            .on_conflict_do_nothing(index_elements=["inbox_id", "role"])
        )
        self.insert_media = (
            db.insert(media)
            .from_select(INBOUND_COLUMNS, INBOUND_FROM_CLAIM)
            .on_conflict_do_nothing(index_elements=["inbox_id", "role"])
        )

    async def claimable(self, limit: int) -> list[tuple[int, str]]:
        """(row id, user key) of messages ready to answer now, at most one per user."""
        async with self._db.connect() as conn:
            rows = await conn.execute(_READY, {"now": time.time(), "limit": limit})
            return [(r.id, r.conversation_key) for r in rows]

    async def claim(
        self, row_id: int, conversation_key: str, owner: str, lease: float
    ) -> InboxRow | None:
        """Take one message for answering, atomically; None if someone else was first."""
        claimed = await self.claim_many([(row_id, conversation_key)], owner, lease)
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
        if self._db.is_sqlite:
            row_ids = [row_id for row_id, _ in candidates]
            async with self._db.write() as conn:
                batch = (await conn.execute(_CLAIM_BATCH, {**claim, "row_ids": row_ids})).all()
            return sorted((row_of(r) for r in batch), key=lambda r: r.id)
        claimed: list[InboxRow] = []
        async with self._db.engine.begin() as conn:
            for row_id, conversation_key in candidates:
                if not await lock_conversation(conn, conversation_key):
                    continue
                found = (await conn.execute(_CLAIM, {**claim, "row_id": row_id})).first()
                if found:
                    claimed.append(row_of(found))
        return claimed

    async def extend_lease(self, row_id: int, owner: str, lease: float) -> bool:
        return await self._set_owned(row_id, owner, "lease_until", time.time() + lease)

    async def save_reply(self, row: InboxRow, owner: str, reply: str) -> bool | None:
        """Keep the answer, so a retry after a crash sends it instead of asking again.

        Returns `written_after(row)` as it is now, or None if the claim is no longer ours.
        """
        parameters = {
            "row_id": row.id,
            "me": owner,
            "reply": reply,
            "updated_at": time.time(),
            "user_key": row.conversation_key,
            "answered_sent_at": row.sent_at,
        }
        saved = await self._db.rows(_SAVE_REPLY, parameters)
        return bool(saved[0][0]) if saved else None

    async def mark_parts_sent(self, row_id: int, owner: str, parts_sent: int) -> bool:
        return await self._set_owned(row_id, owner, "parts_sent", parts_sent)

    async def _set_owned(self, row_id: int, owner: str, column: str, value: object) -> bool:
        parameters = {"row_id": row_id, "me": owner, column: value, "updated_at": time.time()}
        async with self._db.write() as conn:
            result = await conn.execute(_SET_OWNED[column], parameters)
            return result.rowcount == 1

    async def finish(
        self,
        row_id: int,
        owner: str,
        state: MessageState,
        *,
        error: str | None = None,
        new_turns: Sequence[Turn] = (),
        media_note: MediaNote | None = None,
    ) -> bool:
        """Close a claimed message and add its turns to its user's conversation (with
        `media_note`, the customer's file the user's turn shows).

        The turns go first, and only while the claim is ours; they are keyed by message and
        role, so if the process dies between the two writes, the retry adds them only once.
        """
        now = time.time()
        async with self._db.write() as conn:
            await self._insert_turns(conn, row_id, owner, new_turns, now)
            if media_note is not None and any(t.role is Role.USER for t in new_turns):
                parameters = inbound_parameters(media_note, row_id, owner, now)
                await conn.execute(self.insert_media, parameters)
            finished = await conn.execute(
                _FINISH,
                {"row_id": row_id, "me": owner, "state": state, "error": error, "updated_at": now},
            )
            return finished.rowcount == 1

    async def add_turns(self, row_id: int, owner: str, new_turns: Sequence[Turn]) -> None:
        """A claimed message's turns, before it closes: so that an event it causes (a person
        asked for) comes after them in the transcript. Closing it then adds none again."""
        async with self._db.write() as conn:
            await self._insert_turns(conn, row_id, owner, new_turns, time.time())

    async def _insert_turns(
        self,
        conn: AsyncConnection,
        row_id: int,
        owner: str,
        new_turns: Sequence[Turn],
        now: float,
    ) -> None:
        if new_turns:
            await conn.execute(
                self.insert_turns, [turn_values(row_id, owner, turn, now) for turn in new_turns]
            )

    async def written_after(self, row: InboxRow) -> bool:
        """Whether the user sent another message after this one (by Meta's timestamp)."""
        parameters = {
            "user_key": row.conversation_key,
            "row_id": row.id,
            "answered_sent_at": row.sent_at,
        }
        async with self._db.connect() as conn:
            return (await conn.execute(_LATER, parameters)).first() is not None

    async def release_leases(self) -> int:
        """Hand every claimed message back; only for a database no other process uses."""
        async with self._db.write() as conn:
            result = await conn.execute(_RELEASE)
            return result.rowcount

    async def state_of(self, message_id: str) -> MessageState | None:
        async with self._db.connect() as conn:
            state = await conn.scalar(select(inbox.c.state).where(inbox.c.message_id == message_id))
            return MessageState(state) if state is not None else None

    async def count_unfinished(self) -> int:
        async with self._db.connect() as conn:
            count = await conn.scalar(select(func.count()).where(inbox.c.state.in_(UNFINISHED)))
            return int(count or 0)

    async def purge(self, before: float) -> int:
        """Delete finished messages received before `before`; returns how many went."""
        async with self._db.write() as conn:
            result = await conn.execute(
                delete(inbox).where(inbox.c.received_at < before, inbox.c.state.not_in(UNFINISHED))
            )
            return result.rowcount


async def lock_conversation(conn: AsyncConnection, conversation_key: str) -> bool:
    """PostgreSQL: hold the user's lock for this transaction, or skip if another has it.

    Claims must be exclusive per user, not only per row, so a per-user advisory lock plays
    the part `FOR UPDATE SKIP LOCKED` plays for a plain job queue. SQLite runs one writer at
    a time, so the conditional UPDATE alone is atomic there.
    """
    locked = await conn.scalar(
        select(func.pg_try_advisory_xact_lock(func.hashtextextended(conversation_key, 0)))
    )
    return bool(locked)
