"""What the answering steps share: the message being answered (a Job), and what they decide
for it (an Outcome): the reply to send, and everything that closing its row records."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actions.choices import Choices
from answering.inbound import FixedReply, Question
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
    its conversation, what it asks for (`plan`), and the command it is, if any (recognised in
    `answering.commands`). A burst is answered as its latest message (`row`), the others
    (`earlier`) going to Gemini with it (`answering.bursts`)."""

    row: InboxRow
    business: Business
    graph: GraphClient
    conversation: Conversation
    plan: Question | FixedReply
    command: Command | None = None
    earlier: tuple[InboxRow, ...] = ()  # a burst's messages before `row`, asked together
    quote: str | None = None  # a burst's message that arrived while an answer went out

    def log_fields(self, stage: str, **fields: object) -> dict[str, object]:
        return log_fields(self.row, stage, tenant=self.business.name, **fields)

    @property
    def overriding(self) -> bool:
        """`/reset` and `/forget` work in every state of the conversation and past the rate
        limits; asking for a person is a message like any other there."""
        return self.command in (Command.RESET, Command.FORGET)

    @property
    def question(self) -> Question:
        """What Gemini is asked; only the steps after the fixed replies read it."""
        if isinstance(self.plan, FixedReply):
            raise TypeError("a message with a fixed reply has no question for Gemini")
        return self.plan

    @property
    def remembered_as(self) -> str:
        """How the history keeps the message: a question as it asked, anything else its kind."""
        if isinstance(self.plan, Question):
            return self.plan.remembered_as
        return f"[{self.row.kind}]"

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
class Answer:
    """Gemini's answer to send: it may go as a voice note (VOICE_REPLIES) or with choices to
    tap, and counts as an answer; `written_after` is whether the user wrote again since, when
    already known."""

    text: str
    written_after: bool | None = None
    choices: Choices | None = None  # Gemini offers these: buttons or a list where they fit


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """A person was asked for (by the user or by Gemini): why, and for which conversation."""

    reason: str
    conversation_id: int
    outside_hours: bool = False  # asked while the business is closed


class Erase(enum.Enum):
    """What closing the row erases: Gemini's view of the past (`/reset`) or everything kept
    about the user (`/forget`)."""

    HISTORY = "history"
    EVERYTHING = "everything"


class Limit(enum.StrEnum):
    """Which limit kept the message from Gemini (the `outcome` label of the metrics)."""

    RATE = "rate_limited"
    BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What answering one message came to: the reply to send, and what closing its row
    records: its state and error, the turns it adds, what follows (`then`), what it cost."""

    reply: str | Answer | None
    state: MessageState
    error: str | None = None
    turns: tuple[Turn, ...] = ()
    limit: Limit | None = None
    then: HandoffRequest | Erase | None = None
    use: TokenUse = NOTHING_USED  # what Gemini spent on it (the answer, and speaking it)

    @property
    def text(self) -> str | None:
        """The reply's text, whoever wrote it."""
        return self.reply.text if isinstance(self.reply, Answer) else self.reply

    @property
    def handoff(self) -> HandoffRequest | None:
        """The person asked for, once the reply that says so went out."""
        done = self.state is MessageState.DONE
        return self.then if done and isinstance(self.then, HandoffRequest) else None

    @property
    def label(self) -> str:
        """The outcome label of `assistant_messages_total`."""
        return self.limit.value if self.limit is not None else self.state.value


# A step of the pipeline: the outcome it decides for the job, or None to go on to the next.
Step = Callable[[Job], Awaitable[Outcome | None]]
