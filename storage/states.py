"""Who answers each conversation (the assistant, nobody yet, an operator) and what changes it."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update

from domain.types import ConversationState, Role
from storage.database import Database
from storage.inbox import InboxRow
from storage.prepared import named
from storage.schema import conversations, inbox, sent_messages, turns

CONVERSATION_COLUMNS = (
    conversations.c.id,
    conversations.c.conversation_key,
    conversations.c.phone_number_id,
    conversations.c.user_id,
    conversations.c.recipient,
    conversations.c.profile_name,
    conversations.c.state,
    conversations.c.operator,
    conversations.c.state_since,
    conversations.c.last_user_at,
    conversations.c.last_operator_at,
    conversations.c.last_activity_at,
)

# The state of the conversation a recorded message belongs to (none yet: no row).
_STATE_OF_MESSAGE = (
    select(conversations.c.state)
    .join(inbox, inbox.c.conversation_key == conversations.c.conversation_key)
    .where(inbox.c.message_id == bindparam("message_id"))
)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation as the store keeps it."""

    id: int
    conversation_key: str
    phone_number_id: str
    user_id: str
    recipient: str
    profile_name: str | None
    state: ConversationState
    operator: str | None
    state_since: float
    last_user_at: float | None
    last_operator_at: float | None
    last_activity_at: float

    def quiet_since(self) -> float:
        """Since when no operator has written (or the state began, if none has)."""
        return max(self.state_since, self.last_operator_at or 0.0)


_CONVERSATION_NAMES = tuple(column.name for column in CONVERSATION_COLUMNS)


def conversation_of(values: object) -> Conversation:
    data = {column.name: getattr(values, column.name) for column in CONVERSATION_COLUMNS}
    data["state"] = ConversationState(data["state"])
    return Conversation(**data)


def _user_id(row: InboxRow) -> str:
    return row.conversation_key.split(":", 1)[-1]


class ConversationStates:
    """Each conversation's row: created by its first message, changed by handoffs."""

    def __init__(self, db: Database) -> None:
        self._db = db
        values = {
            "profile_name": func.coalesce(bindparam("profile_name"), conversations.c.profile_name),
            "recipient": bindparam("recipient"),
            "last_user_at": func.coalesce(
                func.max(conversations.c.last_user_at, bindparam("last_user_at"))
                if db.is_sqlite
                else func.greatest(conversations.c.last_user_at, bindparam("last_user_at")),
                bindparam("last_user_at"),
            ),
            "last_activity_at": bindparam("now"),
        }
        self._touch = (
            db.insert(conversations)
            .values(
                conversation_key=bindparam("conversation_key"),
                phone_number_id=bindparam("phone_number_id"),
                user_id=bindparam("user_id"),
                recipient=bindparam("recipient"),
                profile_name=bindparam("profile_name"),
                state=ConversationState.ASSISTANT.value,
                state_since=bindparam("now"),
                last_user_at=bindparam("last_user_at"),
                last_activity_at=bindparam("now"),
            )
            .on_conflict_do_update(index_elements=["conversation_key"], set_=values)
            .returning(*CONVERSATION_COLUMNS)
        )

    async def touch(self, row: InboxRow, written_at: float) -> Conversation:
        """The conversation of a message being answered, created or brought up to date."""
        parameters = {
            "conversation_key": row.conversation_key,
            "phone_number_id": row.phone_number_id,
            "user_id": _user_id(row),
            "recipient": row.recipient,
            "profile_name": row.profile_name,
            "last_user_at": written_at,
            "now": time.time(),
        }
        [values] = await self._db.rows(self._touch, parameters)
        return conversation_of(named(_CONVERSATION_NAMES, values))

    async def get(self, conversation_id: int) -> Conversation | None:
        query = select(*CONVERSATION_COLUMNS).where(conversations.c.id == conversation_id)
        async with self._db.connect() as conn:
            found = (await conn.execute(query)).first()
        return conversation_of(found) if found is not None else None

    async def change(
        self,
        conversation_key: str,
        state: ConversationState,
        *,
        event: str,
        operator: str | None = None,
        detail: str | None = None,
        inbox_id: int | None = None,
        only_from: Collection[ConversationState] | None = None,
    ) -> bool:
        """Move a conversation to `state` and write the event in its transcript, together;
        with `only_from`, only while it is in one of those states (else nothing changes and
        False: someone else moved it meanwhile)."""
        now = time.time()
        change = update(conversations).where(conversations.c.conversation_key == conversation_key)
        if only_from is not None:
            change = change.where(conversations.c.state.in_([s.value for s in only_from]))
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                change.values(
                    state=state.value,
                    operator=operator if state is ConversationState.OPERATOR else None,
                    state_since=now,
                    last_activity_at=now,
                )
            )
            if only_from is not None and changed.rowcount == 0:
                return False
            await conn.execute(
                turns.insert().values(
                    conversation_key=conversation_key,
                    role="event",
                    text=event,
                    author=operator,
                    detail=detail[:255] if detail else None,
                    created_at=now,
                    inbox_id=inbox_id,
                )
            )
        return True

    async def operator_wrote(
        self,
        conversation_key: str,
        operator: str,
        parts: Sequence[str],
        *,
        sent: Sequence[str] = (),
        detail: str | None = None,
    ) -> None:
        """What an operator sent, kept as the assistant's side of the history Gemini gets;
        `sent`: the ids Meta gave its messages (kept already), whose statuses the line shows."""
        now = time.time()
        async with self._db.transaction() as conn:
            added = await conn.execute(
                turns.insert().returning(turns.c.id),
                [
                    {
                        "conversation_key": conversation_key,
                        "role": Role.MODEL.value,
                        "text": text,
                        "author": operator,
                        "detail": detail[:255] if detail else None,
                        "created_at": now,
                    }
                    for text in parts
                ],
            )
            turn_ids = [row.id for row in added]
            if sent and turn_ids:
                await conn.execute(
                    update(sent_messages)
                    .where(sent_messages.c.wamid.in_(list(sent)))
                    .values(turn_id=turn_ids[-1])
                )
            await conn.execute(
                update(conversations)
                .where(conversations.c.conversation_key == conversation_key)
                .values(last_operator_at=now, last_activity_at=now)
            )

    async def quiet_handoffs(self, quiet_before: float) -> list[str]:
        """Conversations with a person whose operators wrote nothing since `quiet_before`."""
        query = select(conversations.c.conversation_key).where(
            conversations.c.state != ConversationState.ASSISTANT.value,
            conversations.c.state_since < quiet_before,
            func.coalesce(conversations.c.last_operator_at, 0) < quiet_before,
        )
        async with self._db.connect() as conn:
            return [row.conversation_key for row in await conn.execute(query)]

    async def held_for(self, message_id: str) -> bool:
        """Whether a person has (or is asked for) the conversation of a message just recorded:
        then nothing goes to the customer automatically, not even blue ticks."""
        rows = await self._db.rows(_STATE_OF_MESSAGE, {"message_id": message_id})
        return bool(rows) and rows[0][0] != ConversationState.ASSISTANT.value
