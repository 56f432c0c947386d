"""The console's view of conversations: its types, and the interface storage implements."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

from domain.types import ConversationState, ToolCallRecord

__all__ = [
    "ConsoleData",
    "ConversationState",
    "ConversationSummary",
    "EmptyConsoleData",
    "ReplyResult",
    "TranscriptEntry",
]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One conversation as the list shows it."""

    id: int
    business: str
    name: str  # the user's profile name, or the number when there is none
    number: str  # digits, may be ""
    state: ConversationState
    operator: str | None  # the operator who has it (state OPERATOR)
    last_activity: float  # epoch seconds of the newest entry of the transcript
    preview: str  # a short extract of the newest message
    last_user_at: float | None  # when the user last wrote (WhatsApp's 24-hour window)


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One line of a conversation's transcript: a message, or an event such as a takeover."""

    id: int
    at: float  # epoch seconds
    author: Literal["user", "assistant", "operator", "event"]
    text: str
    operator: str | None = None  # who sent it (operator messages) or did it (events)
    sources: tuple[str, ...] = ()  # titles of the documents an assistant answer drew on
    tool_calls: tuple[ToolCallRecord, ...] = ()  # the business's API, called for an answer
    delivery: str | None = None  # a sent message's latest status, in words (console/words.py)


@dataclass(frozen=True, slots=True)
class ReplyResult:
    """Whether an operator's reply went out; if not, a sentence the page shows as the reason."""

    sent: bool
    reason: str | None = None


class ConsoleData(Protocol):
    """The conversations the console shows and the actions it takes on them.

    Access (which operator may see which business) is the console's job, not this one's:
    `businesses=None` means every business.
    """

    def business_names(self) -> list[str]:
        """The names of the businesses this deployment serves, in display order."""
        ...

    async def conversations(
        self,
        *,
        businesses: Collection[str] | None,
        state: ConversationState | None,
        search: str | None,
        limit: int = 200,
    ) -> list[ConversationSummary]:
        """The newest conversations first (by `last_activity`); `search` matches the name or
        the number (case-insensitive substring); None filters nothing."""
        ...

    async def conversation(self, conversation_id: int) -> ConversationSummary | None: ...

    async def transcript(self, conversation_id: int) -> list[TranscriptEntry]:
        """Every entry of the conversation, oldest first."""
        ...

    async def take_over(self, conversation_id: int, operator: str) -> None:
        """Put the conversation with `operator` (state OPERATOR), recording the event."""
        ...

    async def hand_back(self, conversation_id: int, operator: str) -> None:
        """Give the conversation back to the assistant (state ASSISTANT), recording the event."""
        ...

    async def send_reply(self, conversation_id: int, operator: str, text: str) -> ReplyResult:
        """Send `text` to the user as WhatsApp text and add it to the transcript, or refuse
        (outside the 24-hour window, for example) with a reason and send nothing."""
        ...


class EmptyConsoleData:
    """Lists nothing and does nothing: the console before storage provides the real one."""

    def business_names(self) -> list[str]:
        return []

    async def conversations(
        self,
        *,
        businesses: Collection[str] | None,
        state: ConversationState | None,
        search: str | None,
        limit: int = 200,
    ) -> list[ConversationSummary]:
        return []

    async def conversation(self, conversation_id: int) -> ConversationSummary | None:
        return None

    async def transcript(self, conversation_id: int) -> list[TranscriptEntry]:
        return []

    async def take_over(self, conversation_id: int, operator: str) -> None:
        return None

    async def hand_back(self, conversation_id: int, operator: str) -> None:
        return None

    async def send_reply(self, conversation_id: int, operator: str, text: str) -> ReplyResult:
        return ReplyResult(False, "This conversation cannot be answered from here.")
