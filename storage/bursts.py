"""Bursts: a user's unanswered messages found due, claimed together in one claim, and closed.

A user's burst is due once they stopped writing for `debounce` seconds, or `longest` seconds
after its first message, or at once when one of its messages is a command. Nothing is stored
for it: the due time is computed from the rows' `received_at` by the query that finds work and
checked again by the claim's own WHERE, so a message recorded in between keeps the burst
waiting and two workers can never both win it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from domain.types import UNFINISHED, MessageState, Turn
from storage.conversations import turn_values
from storage.database import Database
from storage.inbox import CLAIM_VALUES, Inbox, InboxRow, lock_conversation, row_of
from storage.media import MediaNote, inbound_parameters
from storage.prepared import named
from storage.schema import inbox

QUOTE_HORIZON_SECONDS = 3600.0  # an earlier answer still being sent after an hour is no answer


@dataclass(frozen=True, slots=True)
class Due:
    """A user with unanswered messages, and when their burst is due (0: now, a command)."""

    conversation_key: str
    due: float


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed message of a burst; `quote`: it arrived while an earlier answer to the same
    user was still going out, so the answer to it quotes it."""

    row: InboxRow
    quote: bool


def _claimable(table: FromClause) -> ColumnElement[bool]:
    return and_(
        table.c.state.in_(UNFINISHED),
        or_(table.c.state == MessageState.PENDING, table.c.lease_until < bindparam("now")),
    )


def _answered_now(table: FromClause) -> ColumnElement[bool]:
    """Someone holds a live claim on one of the user's messages: the burst waits for them."""
    live = inbox.alias("live")
    return exists().where(
        live.c.conversation_key == table.c.conversation_key,
        live.c.state == MessageState.PROCESSING,
        live.c.lease_until >= bindparam("now"),
    )


def _is_command(table: FromClause) -> ColumnElement[bool]:
    return and_(
        table.c.kind == "text",
        func.lower(func.trim(table.c.text)).in_(bindparam("commands", expanding=True)),
    )


def _due_now(table: FromClause) -> ColumnElement[bool]:
    """The claim's own check that the user's burst is due, as `_READY` computes it."""
    other = inbox.alias("waiting")
    same_user = and_(other.c.conversation_key == table.c.conversation_key, _claimable(other))
    return or_(
        ~exists().where(same_user, other.c.received_at > bindparam("quiet_since")),
        exists().where(same_user, other.c.received_at <= bindparam("started_before")),
        exists().where(same_user, _is_command(other)),
    )


_latest = func.max(inbox.c.received_at) + bindparam("debounce", type_=Float)
_capped = func.min(inbox.c.received_at) + bindparam("longest", type_=Float)
_DUE = case(
    (func.max(case((_is_command(inbox), 1), else_=0)) == 1, literal(0.0)),
    (_latest < _capped, _latest),
    else_=_capped,
)
_READY = (
    select(inbox.c.conversation_key, _DUE.label("due"))
    .where(_claimable(inbox), ~_answered_now(inbox))
    .group_by(inbox.c.conversation_key)
    .order_by(_DUE)
    .limit(bindparam("limit"))
)

_candidate = inbox.alias("candidate")
_CLAIM = (
    update(inbox)
    .where(
        inbox.c.id.in_(
            select(_candidate.c.id).where(
                _candidate.c.conversation_key.in_(bindparam("keys", expanding=True)),
                _claimable(_candidate),
                ~_answered_now(_candidate),
                _due_now(_candidate),
            )
        )
    )
    .values(CLAIM_VALUES)
)
_earlier = inbox.alias("earlier")
# RETURNING renders the updated table's columns unqualified, which inside the subquery would
# name the alias's own: the claimed row's are spelled out.
_this: dict[str, ColumnElement[Any]] = {
    name: literal_column(f"inbox.{name}") for name in ("conversation_key", "id", "received_at")
}
_QUOTE = exists().where(
    _earlier.c.conversation_key == _this["conversation_key"],
    _earlier.c.id < _this["id"],
    _earlier.c.state.not_in(UNFINISHED),
    _earlier.c.updated_at > _this["received_at"],
    _earlier.c.received_at > _this["received_at"] - QUOTE_HORIZON_SECONDS,
)
_CLAIM_RETURNING = _CLAIM.returning(*inbox.c, _QUOTE.label("quote"))
_CLAIMED_NAMES = (*inbox.c.keys(), "quote")  # the claim's rows' values, in order

_MINE = update(inbox).where(
    inbox.c.id.in_(bindparam("row_ids", expanding=True)), inbox.c.owner == bindparam("me")
)
# Given back: a reply saved for an answer that is not sent goes too.
_RELEASE = _MINE.values(state=MessageState.PENDING, owner=None, lease_until=None, reply=None)
_EXTEND = _MINE.values(lease_until=bindparam("lease_until"))
_FINISH = _MINE.values(
    state=bindparam("state"),
    error=bindparam("error"),
    owner=None,
    lease_until=None,
    updated_at=bindparam("updated_at"),
)


class Bursts:
    """Finds, claims, gives back and closes bursts: a user's unanswered messages together."""

    def __init__(self, db: Database, inbox_: Inbox) -> None:
        self._db = db
        self._inbox = inbox_
        self.clock = time.time  # when a burst closes (tests move it)

    async def ready(
        self, limit: int, *, now: float, debounce: float, longest: float, commands: Sequence[str]
    ) -> list[Due]:
        """Users whose messages wait, soonest due first, with no claim of theirs alive."""
        parameters = {
            "now": now,
            "limit": limit,
            "debounce": debounce,
            "longest": longest,
            "commands": [c.strip().lower() for c in commands],
        }
        rows = await self._db.rows(_READY, parameters)
        return [Due(key, float(due)) for key, due in rows]

    async def claim(
        self,
        keys: Sequence[str],
        owner: str,
        lease: float,
        *,
        now: float,
        debounce: float,
        longest: float,
        commands: Sequence[str],
    ) -> list[list[Claimed]]:
        """Each due user's claimable messages, taken in one claim, in the order the user sent
        them (Meta's timestamp, then arrival); users someone else took, or that wrote again
        meanwhile, are skipped."""
        if not keys:
            return []
        parameters = {
            "owner": owner,
            "lease_until": now + lease,
            "now": now,
            "quiet_since": now - debounce,
            "started_before": now - longest,
            "commands": [c.strip().lower() for c in commands],
        }
        found: list[Any] = []
        if self._db.is_sqlite:
            rows = await self._db.rows(_CLAIM_RETURNING, {**parameters, "keys": keys})
            found.extend(named(_CLAIMED_NAMES, values) for values in rows)
        else:
            async with self._db.engine.begin() as conn:
                for key in keys:
                    if await lock_conversation(conn, key):
                        result = await conn.execute(_CLAIM_RETURNING, {**parameters, "keys": [key]})
                        found.extend(result.all())
        by_user: dict[str, list[Claimed]] = {}
        for values in found:
            claimed = Claimed(row_of(values), bool(values.quote))
            by_user.setdefault(claimed.row.conversation_key, []).append(claimed)
        return [
            sorted(burst, key=lambda c: (c.row.sent_at, c.row.id)) for burst in by_user.values()
        ]

    async def extend_leases(self, row_ids: Sequence[int], owner: str, lease: float) -> bool:
        """Renew the claim on a burst's messages; False once it is no longer ours."""
        parameters = {"row_ids": list(row_ids), "me": owner, "lease_until": time.time() + lease}
        async with self._db.write() as conn:
            return (await conn.execute(_EXTEND, parameters)).rowcount > 0

    async def release(self, row_ids: Sequence[int], owner: str) -> int:
        """Give claimed messages back, to be claimed again with what the user writes next."""
        if not row_ids:
            return 0
        async with self._db.write() as conn:
            result = await conn.execute(_RELEASE, {"row_ids": list(row_ids), "me": owner})
            return result.rowcount

    async def finish(
        self,
        row_ids: Sequence[int],
        owner: str,
        state: MessageState,
        *,
        error: str | None = None,
        new_turns: Sequence[tuple[int, Turn]] = (),
        media_notes: Sequence[tuple[int, MediaNote]] = (),
    ) -> int:
        """Close a burst's messages together, each adding its turns and its customer's file
        (as `Inbox.finish`)."""
        now = self.clock()
        async with self._db.write() as conn:
            if new_turns:
                await conn.execute(
                    self._inbox.insert_turns,
                    [turn_values(row_id, owner, turn, now) for row_id, turn in new_turns],
                )
            for row_id, note in media_notes:
                parameters = inbound_parameters(note, row_id, owner, now)
                await conn.execute(self._inbox.insert_media, parameters)
            finished = await conn.execute(
                _FINISH,
                {
                    "row_ids": list(row_ids),
                    "me": owner,
                    "state": state,
                    "error": error,
                    "updated_at": now,
                },
            )
            return finished.rowcount
