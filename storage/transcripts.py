"""What the console reads: conversations newest first, filtered and searched, and transcripts."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, or_, select

from domain.delivery import Delivery, of_line
from domain.types import ConversationState, Role, ToolCallRecord
from storage.database import Database
from storage.delivery import Deliveries, LineDeliveries
from storage.media import Media, StoredMedia
from storage.schema import conversations, turns
from storage.states import CONVERSATION_COLUMNS, Conversation, conversation_of

# The newest message's start: enough for a preview once an answer's Markdown is formatted away.
PREVIEW_SOURCE_CHARS = 2000
TRANSCRIPT_LIMIT = 500

_LAST_MESSAGE_ID = (
    select(turns.c.id)
    .where(
        turns.c.conversation_key == conversations.c.conversation_key,
        turns.c.role.in_([Role.USER.value, Role.MODEL.value]),
    )
    .order_by(turns.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
_last = turns.alias("last_message")


@dataclass(frozen=True, slots=True)
class Listed:
    """A conversation as the list shows it: its row and the start of its newest message, as
    stored (an answer or an operator's message in Markdown: `preview_role` is `model`)."""

    conversation: Conversation
    preview: str
    preview_role: str = Role.USER.value


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a transcript as stored: a turn, an operator's message, or an event."""

    id: int
    at: float
    role: str  # user, model, event
    text: str
    author: str | None
    detail: str | None
    sources: tuple[str, ...]
    tool_calls: tuple[ToolCallRecord, ...] = ()
    delivery: Delivery | None = None  # the user's side of a message sent to them
    media: StoredMedia | None = None  # the customer's file, or the voice note an answer went as


def tool_calls_of(stored: str | None) -> tuple[ToolCallRecord, ...]:
    """The calls kept on a turn (storage.conversations.tool_calls_json wrote them)."""
    if not stored:
        return ()
    return tuple(
        ToolCallRecord(c["name"], c.get("status"), c.get("error"), c.get("ms", 0.0))
        for c in json.loads(stored)
    )


def _delivery_of(row: Row[Any], lines: LineDeliveries) -> Delivery | None:
    """What became of the messages a transcript line was sent as: an operator's message or a
    template by its own id, an answer by the inbound message it answered."""
    if row.role != Role.MODEL.value:
        return None
    parts = lines.by_turn.get(row.id)
    if parts is None and row.inbox_id is not None:
        parts = lines.by_inbox.get(row.inbox_id)
    return of_line(parts or [])


def _like(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


class Transcripts:
    """Read-only queries for the console; every write goes through ConversationStates."""

    def __init__(self, db: Database, deliveries: Deliveries, media: Media) -> None:
        self._db = db
        self._deliveries = deliveries
        self._media = media

    async def listed(
        self,
        *,
        phone_number_ids: Collection[str] | None,
        state: ConversationState | None,
        search: str | None,
        limit: int,
    ) -> list[Listed]:
        """The newest conversations first (by last activity) of the businesses whose number ids
        are given (None: all); `search` matches, without case, the profile name, the user's id
        (a business-scoped one included) or the number answered (`recipient`, the `wa_id`
        where Meta sent one)."""
        query = select(
            *CONVERSATION_COLUMNS,
            func.substr(_last.c.text, 1, PREVIEW_SOURCE_CHARS).label("preview"),
            _last.c.role.label("preview_role"),
        ).select_from(conversations.outerjoin(_last, _last.c.id == _LAST_MESSAGE_ID))
        if phone_number_ids is not None:
            query = query.where(conversations.c.phone_number_id.in_(list(phone_number_ids)))
        if state is not None:
            query = query.where(conversations.c.state == state.value)
        if search and search.strip():
            pattern = _like(search.strip())
            query = query.where(
                or_(
                    func.lower(func.coalesce(conversations.c.profile_name, "")).like(
                        pattern, escape="\\"
                    ),
                    func.lower(conversations.c.user_id).like(pattern, escape="\\"),
                    conversations.c.recipient.like(pattern, escape="\\"),
                )
            )
        query = query.order_by(
            conversations.c.last_activity_at.desc(), conversations.c.id.desc()
        ).limit(limit)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Listed(conversation_of(row), row.preview or "", row.preview_role or Role.USER.value)
            for row in rows
        ]

    async def entries(self, conversation_key: str) -> list[Entry]:
        """The newest TRANSCRIPT_LIMIT lines of a conversation, oldest first; what the service
        sent with its delivery status."""
        query = (
            select(turns)
            .where(turns.c.conversation_key == conversation_key)
            .order_by(turns.c.id.desc())
            .limit(TRANSCRIPT_LIMIT)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        sent = [row for row in rows if row.role == Role.MODEL.value]
        lines = await self._deliveries.of_lines(
            conversation_key,
            inbox_ids=[row.inbox_id for row in sent if row.inbox_id is not None],
            turn_ids=[row.id for row in sent],
        )
        files = await self._media.of_lines(
            conversation_key, [row.inbox_id for row in rows if row.inbox_id is not None]
        )
        return [
            Entry(
                id=row.id,
                at=row.created_at,
                role=row.role,
                text=row.text,
                author=row.author,
                detail=row.detail,
                sources=tuple(json.loads(row.sources)) if row.sources else (),
                tool_calls=tool_calls_of(row.tool_calls),
                delivery=_delivery_of(row, lines),
                media=files.get((row.inbox_id, row.role)) if row.author is None else None,
            )
            for row in reversed(rows)
        ]
