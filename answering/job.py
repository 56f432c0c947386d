"""One claimed message with its business, what each answering step works on and produces."""

from __future__ import annotations

from dataclasses import dataclass

from domain.businesses import Business
from domain.types import Command, MessageState, Turn
from ops.logs import short_hash
from storage.inbox import InboxRow
from storage.states import Conversation
from whatsapp import GraphClient


@dataclass(frozen=True, slots=True)
class Job:
    """A message being answered: its inbox row, its business and that business's Graph client,
    and its conversation once the pipeline has it."""

    row: InboxRow
    business: Business
    graph: GraphClient
    conversation: Conversation | None = None

    def log_fields(self, stage: str, **fields: object) -> dict[str, object]:
        return log_fields(self.row, stage, tenant=self.business.name, **fields)


def log_fields(row: InboxRow, stage: str, **fields: object) -> dict[str, object]:
    """Structured log fields about one message: hashes of its ids, never the ids themselves."""
    return {
        "message_hash": short_hash(row.message_id),
        "user_hash": short_hash(row.conversation_key),
        "stage": stage,
        **fields,
    }


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """A person was asked for (by the user or by Gemini): why, and for which conversation."""

    reason: str
    conversation_id: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What answering one message produced: the reply to send and how to close the row."""

    reply: str | None
    state: MessageState
    error: str | None = None
    turns: tuple[Turn, ...] = ()
    rate_limited: bool = False
    command: Command | None = None
    handoff: HandoffRequest | None = None

    @property
    def label(self) -> str:
        """The outcome label of `assistant_messages_total`."""
        return "rate_limited" if self.rate_limited else self.state.value
