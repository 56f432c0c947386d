"""Handing a conversation to a person: asked for, waited on, timed out, and the team told."""

from __future__ import annotations

import logging
import time

from answering.inbound import FixedReply
from answering.job import HandoffRequest, Job, Outcome, log_fields
from answering.notify import Notifier
from config import Settings
from domain.types import ConversationState, MessageState, Role, Turn
from hours.schedule import Clock, system_clock
from hours.words import away_text
from language.replies import Reply
from ops.logs import short_hash
from storage.inbox import InboxRow
from storage.store import Store

log = logging.getLogger(__name__)

HANDOFF_REQUESTED, TIMED_OUT = "handoff_requested", "handoff_timed_out"
ASKED_WITH_COMMAND = "asked with the handoff command"
# Appended to the system prompt while the console is on, so Gemini knows when to call it.
PROMPT_HINT = (
    "If the customer asks for a person, or you cannot help with what they need, call the "
    "function transfer_to_human with a short reason instead of answering."
)


class Handoff:
    """The pipeline's handoff step; does nothing while the console is off."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        notifier: Notifier | None,
        clock: Clock = system_clock,
    ) -> None:
        self._settings = settings
        self._store = store
        self._notifier = notifier
        self.clock = clock  # what "now" is for the business's opening hours

    @property
    def enabled(self) -> bool:
        return self._settings.console_enabled

    async def held(self, job: Job) -> Outcome | None:
        """The pipeline's step for a conversation a person has (or is to get): the message is
        kept for them, not answered, and gets no read receipt. `/reset` and `/forget` go on."""
        if await self._settled(job) is ConversationState.ASSISTANT:
            return None
        if job.overriding:
            return None
        return Outcome(None, MessageState.DONE, turns=(Turn(Role.USER, job.remembered_as),))

    async def _settled(self, job: Job) -> ConversationState:
        """The conversation's state now: back to the assistant once operators went quiet."""
        conversation = job.conversation
        if conversation.state is ConversationState.ASSISTANT:
            return conversation.state
        quiet_for = time.time() - conversation.quiet_since()
        if quiet_for < self._settings.handoff_timeout_hours * 3600:
            return conversation.state
        await self._store.states.change(
            conversation.conversation_key, ConversationState.ASSISTANT, event=TIMED_OUT
        )
        log.info(
            "conversation %s back to the assistant after %.0f h without an operator",
            short_hash(conversation.conversation_key),
            quiet_for / 3600,
            extra=job.log_fields("handoff"),
        )
        return ConversationState.ASSISTANT

    def reply(self, job: Job) -> str:
        """HANDOFF_REPLY if set, else the catalogue's line in the user's language; while the
        business is closed, with when its team is back (in the user's language)."""
        reply = job.fixed(FixedReply(Reply.HANDOFF), self._settings.handoff_reply)
        away = away_text(job.business.hours, self.clock(), job.language)
        return f"{reply} {away}" if away else reply

    def asked(self, job: Job, reason: str, turns: tuple[Turn, ...] = ()) -> Outcome:
        """A person was asked for: the user is told so, and closing the row hands it over."""
        closed = not job.business.hours.at(self.clock()).open
        request = HandoffRequest(reason, job.conversation.id, outside_hours=closed)
        return Outcome(self.reply(job), MessageState.DONE, turns=turns, then=request)

    def asked_by_command(self, job: Job) -> Outcome:
        """The user sent HANDOFF_COMMAND; the history keeps it, so that what an operator then
        writes follows a question of the user's when Gemini reads it back."""
        reply = self.reply(job)
        turns = (Turn(Role.USER, job.row.text or ""), Turn(Role.MODEL, reply))
        return self.asked(job, ASKED_WITH_COMMAND, turns)

    async def hand_over(self, row: InboxRow, business: str, request: HandoffRequest) -> None:
        """After the reply went out, before the row closes: the conversation waits.

        Before, because closing the row lets any instance claim the user's next message, and
        that message must find the conversation waiting (a crash in between retries the row,
        which then finds it waiting and stays quiet; the reply went out already).
        """
        await self._store.states.change(
            row.conversation_key,
            ConversationState.WAITING,
            event=HANDOFF_REQUESTED,
            detail=request.reason,
            inbox_id=row.id,
        )
        log.info(
            "conversation %s waits for a person",
            short_hash(row.conversation_key),
            extra=log_fields(row, "handoff", tenant=business),
        )

    async def tell_team(self, row: InboxRow, business: str, request: HandoffRequest) -> None:
        """Once the row closed: the team's webhook hears that someone waits (if set)."""
        if self._notifier is not None:
            link = (
                f"{self._settings.public_url}/console/conversations/{request.conversation_id}"
                if self._settings.public_url
                else None
            )
            user_id = row.conversation_key.split(":", 1)[-1]
            await self._notifier.handoff(
                business, user_id, link, outside_hours=request.outside_hours
            )
