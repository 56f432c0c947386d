"""Messages that are orders to the service: `/reset` and `/forget`, never sent to Gemini."""

from __future__ import annotations

import logging

from answering.inbound import FixedReply
from answering.job import Job, Outcome
from config import Settings
from domain.types import Command, MessageState
from language.replies import Reply
from ops.logs import short_hash
from storage.inbox import InboxRow
from storage.store import Store
from webhook.events import Kind

log = logging.getLogger(__name__)


def command_of(row: InboxRow, settings: Settings) -> Command | None:
    """The command this message is, if any: exactly its word, case and spaces ignored."""
    if row.kind != Kind.TEXT or not row.text:
        return None
    word = row.text.strip().lower()
    if word == settings.reset_command.lower():
        return Command.RESET
    if word == settings.forget_command.lower():
        return Command.FORGET
    return None


async def run_command(job: Job, command: Command, store: Store, settings: Settings) -> Outcome:
    """Carry out a command; `/forget` erases after its reply is sent (see Pipeline.close)."""
    key = job.row.conversation_key
    if command is Command.RESET:
        await store.conversations.reset(key)
        log.info("conversation of user %s reset", short_hash(key), extra=job.log_fields("command"))
        reply = job.fixed(FixedReply(Reply.RESET), settings.reset_reply)
        return Outcome(reply, MessageState.DONE, command=command)
    log.info("user %s asked to be forgotten", short_hash(key), extra=job.log_fields("command"))
    reply = job.fixed(FixedReply(Reply.FORGET), settings.forget_reply)
    return Outcome(reply, MessageState.DONE, command=command)
