"""What an operator does to a conversation: take it over, reply on WhatsApp, hand it back."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from answering.sending import keep_for_statuses, pause_between_parts
from answering.windows import REPLY_WINDOW_SECONDS
from config import Settings
from domain.types import ConversationState
from language.replies import N_
from markup.whatsapp import markdown_to_whatsapp, split_message
from ops.logs import short_hash
from storage.delivery import SentMessage
from storage.states import Conversation
from storage.store import Store
from webhook.events import ErrorInfo
from whatsapp import GraphAPIError, GraphClient

log = logging.getLogger(__name__)

# The states in which the `Take over` button may take a conversation (the console shows it then).
UNHELD = (ConversationState.ASSISTANT, ConversationState.WAITING)

TAKEN_OVER, HANDED_BACK = "taken_over", "handed_back"
MAX_REPLY_CHARS = 4 * 4096


@dataclass(frozen=True, slots=True)
class Sent:
    """Whether an operator's reply went out; if not, why, in a sentence for the operator (a
    msgid of the console's catalogues, %-formatted with `values`), or Meta's error (its title
    and code), which the console words."""

    sent: bool
    reason: str | None = None
    refused: ErrorInfo | None = None
    values: Mapping[str, object] = field(default_factory=dict)


def meta_error(exc: GraphAPIError) -> ErrorInfo:
    """Meta's refusal of a send as the console shows it: its title (the error's message) and
    code; neither when Meta could not be reached."""
    return ErrorInfo(exc.code, exc.title or "")


def outside_window(conversation: Conversation, now: float) -> Sent | None:
    """Why WhatsApp would refuse a free-form message now, or None when it would not."""
    if conversation.last_user_at is None:
        return Sent(
            False, N_("The customer has not written yet, so WhatsApp does not allow a message.")
        )
    hours = (now - conversation.last_user_at) / 3600
    if now - conversation.last_user_at <= REPLY_WINDOW_SECONDS:
        return None
    reason = N_(
        "The customer last wrote %(hours)s hours ago. WhatsApp only allows replies within "
        "24 hours of the customer's last message, so nothing was sent. The next message they "
        "send opens the window again."
    )
    return Sent(False, reason, values={"hours": round(hours)})


class OperatorDesk:
    """The console's actions on conversations, through each business's Graph client."""

    def __init__(self, settings: Settings, store: Store, graphs: Mapping[str, GraphClient]) -> None:
        self._settings = settings
        self._store = store
        self._graphs = graphs

    @property
    def graphs(self) -> Mapping[str, GraphClient]:
        """Each business's Graph client, by its phone number id."""
        return self._graphs

    async def take_over(
        self, conversation: Conversation, operator: str, *, unless_held: bool = False
    ) -> bool:
        """The conversation with `operator` (from anyone: replying takes it); `unless_held`
        (the button): only while the assistant or a waiting customer has it, else False and
        nothing changes (another operator took it meanwhile)."""
        taken = await self._store.states.change(
            conversation.conversation_key,
            ConversationState.OPERATOR,
            event=TAKEN_OVER,
            operator=operator,
            only_from=UNHELD if unless_held else None,
        )
        if taken:
            log.info("conversation %s taken over", short_hash(conversation.conversation_key))
        return taken

    async def hand_back(self, conversation: Conversation, operator: str) -> bool:
        """Back to the assistant, only while an operator has it: else False and nothing
        changes (it was handed back, or timed out, meanwhile)."""
        handed = await self._store.states.change(
            conversation.conversation_key,
            ConversationState.ASSISTANT,
            event=HANDED_BACK,
            operator=operator,
            only_from=(ConversationState.OPERATOR,),
        )
        if handed:
            log.info("conversation %s handed back", short_hash(conversation.conversation_key))
        return handed

    async def reply(
        self, conversation: Conversation, operator: str, text: str, *, now: float | None = None
    ) -> Sent:
        """Send `text` as the assistant would (WhatsApp formatting, parts of at most 4096
        characters, paced), taking the conversation over first if another had it; refused
        outside WhatsApp's window as of `now` (the console's clock; None: the time)."""
        text = text.strip()
        if not text:
            return Sent(False, N_("Write a reply first."))
        if len(text) > MAX_REPLY_CHARS:
            too_long = N_("That reply is too long: at most %(max)s characters.")
            return Sent(False, too_long, values={"max": MAX_REPLY_CHARS})
        refusal = outside_window(conversation, time.time() if now is None else now)
        if refusal is not None:
            return refusal
        graph = self._graphs.get(conversation.phone_number_id)
        if graph is None:
            return Sent(False, N_("This conversation's business is no longer served here."))
        if (
            conversation.state is not ConversationState.OPERATOR
            or conversation.operator != operator
        ):
            await self.take_over(conversation, operator)
        parts = split_message(markdown_to_whatsapp(text))
        sent: list[str] = []
        try:
            for index, part in enumerate(parts):
                if index:
                    await pause_between_parts(self._settings.part_interval_seconds)
                wamid = await graph.send_text(conversation.recipient, part)
                sent.append(await self.keep_sent(conversation, wamid, "text"))
        except GraphAPIError as exc:
            log.warning(
                "operator reply to %s failed: %s",
                short_hash(conversation.conversation_key),
                exc,
            )
            if index:  # what did go out is part of the conversation
                await self._store.states.operator_wrote(
                    conversation.conversation_key,
                    operator,
                    ["\n\n".join(parts[:index])],
                    sent=sent,
                )
            return Sent(False, refused=meta_error(exc))
        await self._store.states.operator_wrote(
            conversation.conversation_key, operator, [text], sent=sent
        )
        log.info("operator replied in %s", short_hash(conversation.conversation_key))
        return Sent(True)

    async def keep_sent(self, conversation: Conversation, wamid: str, kind: str) -> str:
        """Keep a message Meta accepted, so that its statuses find it; its id."""
        if wamid:
            message = SentMessage(
                wamid, conversation.conversation_key, conversation.phone_number_id, kind
            )
            await keep_for_statuses(self._store, message)
        return wamid
        message = SentMessage(
            wamid, conversation.conversation_key, conversation.phone_number_id, kind
        )
        try:
            await self._store.delivery.sent([message])
        except Exception as exc:
            log.warning(
                "message sent in %s not kept for its statuses: %s",
                short_hash(conversation.conversation_key),
                type(exc).__name__,
            )
        return wamid
