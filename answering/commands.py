"""The commands a user can send (`/reset`, `/forget`, `/human`): recognised and carried out
here, and never sent to Gemini."""

from __future__ import annotations

import logging

from answering.handoff import Handoff
from answering.inbound import FixedReply
from answering.job import Erase, Job, Outcome
from config import Settings
from domain.types import Command, MessageState
from language.replies import Reply
from ops.logs import short_hash
from storage.inbox import InboxRow
from webhook.events import Kind

log = logging.getLogger(__name__)


def command_of(row: InboxRow, settings: Settings) -> Command | None:
    """The command this message is, if any: exactly RESET_COMMAND, FORGET_COMMAND or (while
    the console is on) HANDOFF_COMMAND, case and surrounding spaces ignored."""
    if row.kind != Kind.TEXT or not row.text:
        return None
    words = [(settings.reset_command, Command.RESET), (settings.forget_command, Command.FORGET)]
    if settings.console_enabled:
        words.append((settings.handoff_command, Command.HANDOFF))
    said = row.text.strip().lower()
    return next((command for word, command in words if said == word.lower()), None)


class Commands:
    """The pipeline's command step: the reply to a command, and what closing the row does."""

    def __init__(self, settings: Settings, handoff: Handoff) -> None:
        self._settings = settings
        self._handoff = handoff

    async def run(self, job: Job) -> Outcome | None:
        """None for a message that is no command. `/reset` and `/forget` erase once the row
        closes, even if their confirmation could not be sent (see Pipeline.close)."""
        if job.command is None:
            return None
        if job.command is Command.HANDOFF:
            return self._handoff.asked_by_command(job)
        key = job.row.conversation_key
        if job.command is Command.RESET:
            log.info(
                "user %s asked for a fresh start", short_hash(key), extra=job.log_fields("command")
            )
            reply = job.fixed(FixedReply(Reply.RESET), self._settings.reset_reply)
            return Outcome(reply, MessageState.DONE, then=Erase.HISTORY)
        log.info("user %s asked to be forgotten", short_hash(key), extra=job.log_fields("command"))
        reply = job.fixed(FixedReply(Reply.FORGET), self._settings.forget_reply)
        return Outcome(reply, MessageState.DONE, then=Erase.EVERYTHING)
