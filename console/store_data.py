"""The console's data from the store: conversations, transcripts, and the operator's actions."""

from __future__ import annotations

from collections.abc import Collection

from answering.handoff import HANDOFF_REQUESTED, TIMED_OUT
from answering.operators import HANDED_BACK, TAKEN_OVER, OperatorDesk
from config import Settings
from console.data import ConversationSummary, ReplyResult, TranscriptEntry
from console.words import refused_by_meta, status_word
from domain.types import ConversationState, Role
from markup.whatsapp import markdown_to_whatsapp
from storage.conversations import RESET_EVENT
from storage.states import Conversation
from storage.store import Store
from storage.transcripts import Entry


def event_text(entry: Entry, timeout_hours: float) -> str:
    """An event in words, for the transcript (the page adds who did it)."""
    if entry.text == HANDOFF_REQUESTED:
        return "Asked for a person" + (f": {entry.detail}" if entry.detail else "")
    if entry.text == TAKEN_OVER:
        return "Taken over"
    if entry.text == HANDED_BACK:
        return "Handed back to the assistant"
    if entry.text == TIMED_OUT:
        return f"Back to the assistant: no operator message for {timeout_hours:g} hours"
    if entry.text == RESET_EVENT:
        return "The customer started a fresh conversation"
    return entry.text


class StoreConsoleData:
    """ConsoleData over the store, with an OperatorDesk for the actions."""

    def __init__(self, settings: Settings, store: Store, desk: OperatorDesk) -> None:
        self._settings = settings
        self._store = store
        self._desk = desk

    def business_names(self) -> list[str]:
        return self._settings.businesses.names()

    def _summary(self, conversation: Conversation, preview: str) -> ConversationSummary:
        business = self._settings.businesses.get(conversation.phone_number_id)
        number = conversation.user_id if conversation.user_id.isdigit() else ""
        return ConversationSummary(
            id=conversation.id,
            business=business.name if business else conversation.phone_number_id,
            name=conversation.profile_name or conversation.user_id,
            number=number,
            state=conversation.state,
            operator=conversation.operator,
            last_activity=conversation.last_activity_at,
            preview=preview,
            last_user_at=conversation.last_user_at,
        )

    async def conversations(
        self,
        *,
        businesses: Collection[str] | None,
        state: ConversationState | None,
        search: str | None,
        limit: int = 200,
    ) -> list[ConversationSummary]:
        numbers = None
        if businesses is not None:
            wanted = set(businesses)
            numbers = [b.phone_number_id for b in self._settings.businesses if b.name in wanted]
        listed = await self._store.transcripts.listed(
            phone_number_ids=numbers, state=state, search=search, limit=limit
        )
        return [self._summary(item.conversation, item.preview) for item in listed]

    async def conversation(self, conversation_id: int) -> ConversationSummary | None:
        found = await self._store.states.get(conversation_id)
        return self._summary(found, "") if found is not None else None

    async def transcript(self, conversation_id: int) -> list[TranscriptEntry]:
        found = await self._store.states.get(conversation_id)
        if found is None:
            return []
        timeout = self._settings.handoff_timeout_hours
        entries: list[TranscriptEntry] = []
        for entry in await self._store.transcripts.entries(found.conversation_key):
            if entry.role == "event":
                text = event_text(entry, timeout)
                entries.append(TranscriptEntry(entry.id, entry.at, "event", text, entry.author))
            elif entry.role == Role.USER.value:
                entries.append(TranscriptEntry(entry.id, entry.at, "user", entry.text))
            elif entry.author:  # as the customer saw it on WhatsApp
                text = markdown_to_whatsapp(entry.text)
                entries.append(
                    TranscriptEntry(
                        entry.id,
                        entry.at,
                        "operator",
                        text,
                        entry.author,
                        delivery=status_word(entry.delivery),
                    )
                )
            else:
                text = markdown_to_whatsapp(entry.text)
                entries.append(
                    TranscriptEntry(
                        entry.id,
                        entry.at,
                        "assistant",
                        text,
                        sources=entry.sources,
                        tool_calls=entry.tool_calls,
                        delivery=status_word(entry.delivery),
                    )
                )
        return entries

    async def take_over(self, conversation_id: int, operator: str) -> None:
        found = await self._store.states.get(conversation_id)
        if found is not None:
            await self._desk.take_over(found, operator)

    async def hand_back(self, conversation_id: int, operator: str) -> None:
        found = await self._store.states.get(conversation_id)
        if found is not None:
            await self._desk.hand_back(found, operator)

    async def send_reply(self, conversation_id: int, operator: str, text: str) -> ReplyResult:
        found = await self._store.states.get(conversation_id)
        if found is None:
            return ReplyResult(False, "This conversation no longer exists.")
        sent = await self._desk.reply(found, operator, text)
        reason = refused_by_meta(sent.refused) if sent.refused is not None else sent.reason
        return ReplyResult(sent.sent, reason)
