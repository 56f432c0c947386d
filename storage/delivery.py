"""Delivery: every message the service sent, by Meta's id, moved forward by Meta's status events."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, and_, case, column, func, or_, select, values

from domain.delivery import Delivery, Status, rank_of
from storage.database import Database
from storage.schema import sent_messages
from webhook.events import StatusUpdate

MAX_TITLE_CHARS = 255
STATUSES_PER_STATEMENT = 1000  # Meta batches at most 1000 updates in one webhook


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message Meta accepted: its id, whose conversation, and what it belongs to."""

    wamid: str
    conversation_key: str
    phone_number_id: str
    kind: str  # text, audio, template
    inbox_id: int | None = None  # the inbound message it answers
    turn_id: int | None = None  # the transcript line it is (operators' messages, templates)


@dataclass(frozen=True, slots=True)
class Applied:
    """A status event for a message the service sent."""

    wamid: str
    phone_number_id: str
    status: str
    error_code: int | None


@dataclass(frozen=True, slots=True)
class LineDeliveries:
    """The sent messages of transcript lines: by the inbound message an answer answered, and by
    the line itself (operators' messages, templates)."""

    by_inbox: dict[int, list[Delivery | None]]
    by_turn: dict[int, list[Delivery | None]]


def _latest_per_message(statuses: Sequence[StatusUpdate]) -> list[StatusUpdate]:
    """One event per message: the furthest stage among those of a batch (the first of equal
    ones), so that one statement applies the batch whatever order Meta put it in."""
    latest: dict[str, StatusUpdate] = {}
    for status in statuses:
        if not status.id or rank_of(status.status) == 0:
            continue
        kept = latest.get(status.id)
        if kept is None or rank_of(status.status) > rank_of(kept.status):
            latest[status.id] = status
    return list(latest.values())


def _delivery(status: str | None, code: int | None, title: str | None) -> Delivery | None:
    if status is None:
        return None
    return Delivery(Status(status), code, title)


class Deliveries:
    """Sent messages and their statuses; the webhook's statuses cost one statement a batch."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = db.insert(sent_messages).on_conflict_do_nothing(index_elements=["wamid"])

    async def sent(self, messages: Sequence[SentMessage]) -> None:
        """Keep messages Meta accepted, each once."""
        if not messages:
            return
        now = time.time()
        rows = [
            {
                "wamid": m.wamid,
                "conversation_key": m.conversation_key,
                "phone_number_id": m.phone_number_id,
                "inbox_id": m.inbox_id,
                "turn_id": m.turn_id,
                "kind": m.kind,
                "status": None,
                "rank": 0,
                "error_code": None,
                "error_title": None,
                "created_at": now,
                "updated_at": now,
            }
            for m in messages
            if m.wamid
        ]
        if rows:
            async with self._db.write() as conn:
                await conn.execute(self._insert, rows)

    async def apply(self, statuses: Sequence[StatusUpdate]) -> list[Applied]:
        """Move each message forward to its status (never back); the events that were for a
        message this service sent (those for others' are ignored)."""
        latest = _latest_per_message(statuses)
        if not latest:
            return []
        ours: set[str] = set()
        for start in range(0, len(latest), STATUSES_PER_STATEMENT):
            ours.update(await self._apply(latest[start : start + STATUSES_PER_STATEMENT]))
        return [
            Applied(s.id, s.phone_number_id, s.status, s.errors[0].code if s.errors else None)
            for s in statuses
            if s.id in ours and rank_of(s.status)
        ]

    async def _apply(self, batch: list[StatusUpdate]) -> set[str]:
        """One UPDATE ... FROM (VALUES ...): every message of the batch that is ours is matched
        (RETURNING says which), and moved only where the event's stage is further."""
        incoming = (
            values(
                column("wamid", String),
                column("status", String),
                column("rank", Integer),
                column("error_code", Integer),  # 0: none (an all-NULL column has no type)
                column("error_title", String),  # "": none
                name="incoming",
            )
            .data([_row(status) for status in batch])
            .cte("incoming")
        )
        forward = incoming.c.rank > sent_messages.c.rank

        def moved(new: object, old: object) -> object:
            return case((forward, new), else_=old)

        statement = (
            sent_messages.update()
            .where(sent_messages.c.wamid == incoming.c.wamid)
            .values(
                status=moved(incoming.c.status, sent_messages.c.status),
                rank=moved(incoming.c.rank, sent_messages.c.rank),
                error_code=moved(func.nullif(incoming.c.error_code, 0), sent_messages.c.error_code),
                error_title=moved(
                    func.nullif(incoming.c.error_title, ""), sent_messages.c.error_title
                ),
                updated_at=moved(time.time(), sent_messages.c.updated_at),
            )
            .returning(sent_messages.c.wamid)
        )
        async with self._db.write() as conn:
            return {row.wamid for row in await conn.execute(statement)}

    async def of(self, wamid: str) -> Delivery | None:
        query = select(
            sent_messages.c.status, sent_messages.c.error_code, sent_messages.c.error_title
        ).where(sent_messages.c.wamid == wamid)
        async with self._db.connect() as conn:
            found = (await conn.execute(query)).first()
        return None if found is None else _delivery(*found)

    async def of_lines(
        self, conversation_key: str, inbox_ids: Collection[int], turn_ids: Collection[int]
    ) -> LineDeliveries:
        """The statuses of the messages sent for these transcript lines, oldest first."""
        lines = LineDeliveries({}, {})
        if not inbox_ids and not turn_ids:
            return lines
        query = (
            select(
                sent_messages.c.inbox_id,
                sent_messages.c.turn_id,
                sent_messages.c.status,
                sent_messages.c.error_code,
                sent_messages.c.error_title,
            )
            .where(
                sent_messages.c.conversation_key == conversation_key,
                or_(
                    and_(
                        sent_messages.c.turn_id.is_(None),
                        sent_messages.c.inbox_id.in_(list(inbox_ids)),
                    ),
                    sent_messages.c.turn_id.in_(list(turn_ids)),
                ),
            )
            .order_by(sent_messages.c.created_at)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            delivery = _delivery(row.status, row.error_code, row.error_title)
            if row.turn_id is not None:
                lines.by_turn.setdefault(row.turn_id, []).append(delivery)
            elif row.inbox_id is not None:
                lines.by_inbox.setdefault(row.inbox_id, []).append(delivery)
        return lines


def _row(status: StatusUpdate) -> tuple[str, str, int, int, str]:
    error = status.errors[0] if status.errors else None
    failed = status.status == Status.FAILED.value and error is not None
    return (
        status.id,
        status.status,
        rank_of(status.status),
        (error.code or 0) if failed and error else 0,
        (error.title[:MAX_TITLE_CHARS] if failed and error else ""),
    )
