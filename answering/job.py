"""One claimed message with its business, what each answering step works on and produces."""

from __future__ import annotations

from dataclasses import dataclass

from actions.choices import Choices
from answering.inbound import FixedReply
from domain.businesses import Business
from domain.costs import NOTHING_USED, TokenUse
from domain.types import Command, MessageState, Turn
from language.choice import language_for
from language.replies import Reply, reply_text
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

    @property
    def language(self) -> str:
        """The language of fixed replies for this user: REPLY_LANGUAGE (the business's), where
        `auto` reads the country calling code of the user's number (none: English)."""
        number = self.row.recipient if self.row.recipient.isdigit() else None
        return language_for(number, self.business.reply_language)

    def fixed(self, reply: FixedReply, override: str | None = None) -> str:
        """A fixed reply's text: a setting that sets it wins, else the user's language."""
        return override or reply_text(reply.reply or Reply.APOLOGY, self.language, **reply.fields)


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
    outside_hours: bool = False  # asked while the business is closed


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
    spoken: bool = False  # Gemini's answer: may go as a voice note (VOICE_REPLIES)
    capped: bool = False  # a daily budget kept it from Gemini
    use: TokenUse = NOTHING_USED  # what Gemini spent on it (the answer, and speaking it)
    written_after: bool | None = None  # the user wrote again since (None: not looked up yet)
    choices: Choices | None = None  # Gemini offers these: buttons or a list where they fit

    @property
    def label(self) -> str:
        """The outcome label of `assistant_messages_total`."""
        if self.rate_limited:
            return "rate_limited"
        return "budget" if self.capped else self.state.value
