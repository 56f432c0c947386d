"""An in-memory ConsoleData for the console's tests: conversations a test adds and changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

from console.data import ConversationState, ConversationSummary, ReplyResult, TranscriptEntry
from domain.types import ToolCallRecord

Author = Literal["user", "assistant", "operator", "event"]
WINDOW_SECONDS = 24 * 3600
OUTSIDE_WINDOW = (
    "The user last wrote more than 24 hours ago, and WhatsApp accepts a reply only within "
    "24 hours of their last message."
)


@dataclass
class Conversation:
    id: int
    business: str
    name: str
    number: str
    created_at: float
    state: ConversationState = ConversationState.ASSISTANT
    operator: str | None = None
    entries: list[TranscriptEntry] = field(default_factory=list)

    def summary(self) -> ConversationSummary:
        messages = [e for e in self.entries if e.author != "event"]
        user_times = [e.at for e in self.entries if e.author == "user"]
        return ConversationSummary(
            id=self.id,
            business=self.business,
            name=self.name or self.number,
            number=self.number,
            state=self.state,
            operator=self.operator,
            last_activity=max([self.created_at, *(e.at for e in self.entries)]),
            preview=messages[-1].text[:80] if messages else "",
            last_user_at=max(user_times) if user_times else None,
        )


class MemoryConsoleData:
    """Thread-safe: a browser test changes it from its own thread while the server reads it."""

    def __init__(
        self,
        businesses: Collection[str] = ("Padaria Central",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._businesses = list(businesses)
        self._conversations: dict[int, Conversation] = {}
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1_000_000))
        self.clock = clock
        self.sent: list[tuple[int, str, str]] = []  # (conversation, operator, text) delivered

    # -- what tests do -----------------------------------------------------------------------

    def add_conversation(
        self,
        *,
        business: str | None = None,
        name: str = "",
        number: str = "",
        state: ConversationState = ConversationState.ASSISTANT,
        operator: str | None = None,
        at: float | None = None,
    ) -> int:
        with self._lock:
            conversation_id = next(self._ids)
            self._conversations[conversation_id] = Conversation(
                conversation_id,
                business or self._businesses[0],
                name,
                number,
                self.clock() if at is None else at,
                state,
                operator,
            )
            return conversation_id

    def add_entry(
        self,
        conversation_id: int,
        author: Author,
        text: str,
        *,
        at: float | None = None,
        operator: str | None = None,
        sources: tuple[str, ...] = (),
        tool_calls: tuple[ToolCallRecord, ...] = (),
    ) -> None:
        with self._lock:
            entry = TranscriptEntry(
                next(self._ids),
                self.clock() if at is None else at,
                author,
                text,
                operator,
                sources,
                tool_calls,
            )
            self._conversations[conversation_id].entries.append(entry)

    def set_state(
        self, conversation_id: int, state: ConversationState, operator: str | None = None
    ) -> None:
        with self._lock:
            conversation = self._conversations[conversation_id]
            conversation.state, conversation.operator = state, operator

    def state_of(self, conversation_id: int) -> ConversationSummary:
        with self._lock:
            return self._conversations[conversation_id].summary()

    def entries_of(self, conversation_id: int) -> list[TranscriptEntry]:
        with self._lock:
            return list(self._conversations[conversation_id].entries)

    # -- ConsoleData -------------------------------------------------------------------------

    def business_names(self) -> list[str]:
        return list(self._businesses)

    async def conversations(
        self,
        *,
        businesses: Collection[str] | None,
        state: ConversationState | None,
        search: str | None,
        limit: int = 200,
    ) -> list[ConversationSummary]:
        with self._lock:
            found = [c.summary() for c in self._conversations.values()]
        wanted = (search or "").casefold()
        found = [
            s
            for s in found
            if (businesses is None or s.business in businesses)
            and (state is None or s.state == state)
            and (not wanted or wanted in s.name.casefold() or wanted in s.number)
        ]
        found.sort(key=lambda s: (s.last_activity, s.id), reverse=True)
        return found[:limit]

    async def conversation(self, conversation_id: int) -> ConversationSummary | None:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            return None if conversation is None else conversation.summary()

    async def transcript(self, conversation_id: int) -> list[TranscriptEntry]:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            entries = [] if conversation is None else list(conversation.entries)
        return sorted(entries, key=lambda e: (e.at, e.id))

    async def take_over(self, conversation_id: int, operator: str) -> None:
        self.set_state(conversation_id, ConversationState.OPERATOR, operator)
        self.add_entry(conversation_id, "event", "Taken over", operator=operator)

    async def hand_back(self, conversation_id: int, operator: str) -> None:
        self.set_state(conversation_id, ConversationState.ASSISTANT)
        self.add_entry(conversation_id, "event", "Handed back to the assistant", operator=operator)

    async def send_reply(self, conversation_id: int, operator: str, text: str) -> ReplyResult:
        last_user_at = self.state_of(conversation_id).last_user_at
        if last_user_at is None or self.clock() - last_user_at > WINDOW_SECONDS:
            return ReplyResult(False, OUTSIDE_WINDOW)
        if self.state_of(conversation_id).state != ConversationState.OPERATOR:
            await self.take_over(conversation_id, operator)
        self.add_entry(conversation_id, "operator", text, operator=operator)
        with self._lock:
            self.sent.append((conversation_id, operator, text))
        return ReplyResult(True)
