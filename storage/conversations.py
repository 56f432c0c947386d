"""Conversations: the turns a closed message adds, the history Gemini gets back, a fresh start,
forgetting a user."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, String, Text, bindparam, case, delete, func, select, update

from domain.types import UNFINISHED, Role, ToolCallRecord, Turn
from storage.database import Database
from storage.schema import conversations, inbox, media, rate_notices, sent_messages, turns
from webhook.events import clean_text

RESET_EVENT = "reset"

# Gemini's context: what the user and the assistant said since the last reset, newest first.
_LAST_RESET = (
    select(func.max(turns.c.id))
    .where(
        turns.c.conversation_key == bindparam("conversation_key"),
        turns.c.role == "event",
        turns.c.text == RESET_EVENT,
    )
    .scalar_subquery()
)
_HISTORY = (
    select(turns.c.role, turns.c.text)
    .where(
        turns.c.conversation_key == bindparam("conversation_key"),
        turns.c.role.in_([Role.USER.value, Role.MODEL.value]),
        turns.c.id > func.coalesce(_LAST_RESET, 0),
    )
    .order_by(turns.c.id.desc())
    .limit(bindparam("limit"))
)


# A closed message's turns, only while its claim is still ours, once per message and role. The
# user's turn is dated when the message arrived, the others when they were written: a transcript
# shows when the customer wrote, not when the answer was ready (seconds later, or after a restart).
TURN_COLUMNS = [
    "inbox_id",
    "conversation_key",
    "role",
    "text",
    "created_at",
    "sources",
    "tool_calls",
]
TURN_FROM_CLAIM = select(
    inbox.c.id,
    inbox.c.conversation_key,
    bindparam("role", type_=String),
    bindparam("text", type_=Text),
    case(
        (bindparam("role", type_=String) == Role.USER.value, inbox.c.received_at),
        else_=bindparam("created_at", type_=Float),
    ),
    bindparam("sources", type_=Text),
    bindparam("tool_calls", type_=Text),
).where(inbox.c.id == bindparam("row_id"), inbox.c.owner == bindparam("me"))


def tool_calls_json(calls: Sequence[ToolCallRecord]) -> str | None:
    """The calls an answer made, as the turns table keeps them (storage.transcripts reads it)."""
    if not calls:
        return None
    return json.dumps(
        [{"name": c.name, "status": c.status, "error": c.error, "ms": c.duration_ms} for c in calls]
    )


def turn_values(row_id: int, owner: str, turn: Turn, now: float) -> dict[str, Any]:
    """The parameters of one turn added to a claimed message (TURN_FROM_CLAIM, run as the
    inbox's `insert_turns`)."""
    return {
        "row_id": row_id,
        "me": owner,
        "role": turn.role.value,
        "text": clean_text(turn.text),
        "created_at": now,
        "sources": json.dumps(list(turn.sources)) if turn.sources else None,
        "tool_calls": tool_calls_json(turn.tool_calls),
    }


def anonymous_key(conversation_key: str) -> str:
    """What a forgotten user's message ids are kept under: a hash, only for deduplication."""
    return "forgotten:" + hashlib.sha256(conversation_key.encode()).hexdigest()[:32]


class Conversations:
    """Each user's conversation turns, oldest first, bounded when read."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def history(self, conversation_key: str, max_turns: int, max_chars: int) -> list[Turn]:
        """The latest turns of a conversation, oldest first, within both bounds."""
        if max_turns <= 0 or max_chars <= 0:
            return []
        rows = await self._db.rows(
            _HISTORY, {"conversation_key": conversation_key, "limit": max_turns}
        )
        kept: list[Turn] = []
        total = 0
        for role, text in rows:
            total += len(text)
            if total > max_chars:
                break
            kept.append(Turn(Role(role), text))
        return kept[::-1]

    async def reset(self, conversation_key: str, *, inbox_id: int | None = None) -> None:
        """A fresh start: Gemini no longer gets what came before (the console still shows it)."""
        async with self._db.write() as conn:
            await conn.execute(
                turns.insert().values(
                    conversation_key=conversation_key,
                    role="event",
                    text=RESET_EVENT,
                    created_at=time.time(),
                    inbox_id=inbox_id,
                )
            )

    async def forget(self, conversation_key: str) -> None:
        """Erase what is stored about a user; message ids stay (scrubbed) for deduplication.

        Messages still waiting for an answer were written after the request and are kept.
        """
        async with self._db.transaction() as conn:
            await conn.execute(delete(turns).where(turns.c.conversation_key == conversation_key))
            await conn.execute(
                delete(conversations).where(conversations.c.conversation_key == conversation_key)
            )
            await conn.execute(
                delete(rate_notices).where(rate_notices.c.conversation_key == conversation_key)
            )
            await conn.execute(
                delete(sent_messages).where(sent_messages.c.conversation_key == conversation_key)
            )
            await conn.execute(delete(media).where(media.c.conversation_key == conversation_key))
            await conn.execute(
                update(inbox)
                .where(
                    inbox.c.conversation_key == conversation_key, inbox.c.state.not_in(UNFINISHED)
                )
                .values(
                    conversation_key=anonymous_key(conversation_key),
                    recipient="",
                    text=None,
                    payload="{}",
                    reply=None,
                )
            )

    async def purge(self, before: float) -> int:
        """Delete turns written before `before` (and what was sent then, and their media), and
        conversations quiet since; how many turns."""
        async with self._db.write() as conn:
            result = await conn.execute(delete(turns).where(turns.c.created_at < before))
            await conn.execute(delete(sent_messages).where(sent_messages.c.created_at < before))
            await conn.execute(delete(media).where(media.c.created_at < before))
            await conn.execute(
                delete(conversations).where(conversations.c.last_activity_at < before)
            )
            return result.rowcount
