"""Sending a reply on WhatsApp: the read receipt first, then the parts in order, paced."""

from __future__ import annotations

import asyncio
import logging

from answering.job import Job, Outcome
from config import Settings
from domain.types import MessageState
from markup.whatsapp import markdown_to_whatsapp, split_message
from ops.logs import short_hash
from storage.store import Store
from whatsapp import GraphAPIError

log = logging.getLogger(__name__)

GRAPH_OUTSIDE_WINDOW = 131047


async def pause_between_parts(seconds: float) -> None:
    """The gap between the parts of one reply (Meta limits messages per user per second)."""
    await asyncio.sleep(seconds)


class Sender:
    """Delivers an outcome's reply through the message's business number."""

    def __init__(self, *, settings: Settings, store: Store, owner: str) -> None:
        self._settings = settings
        self._store = store
        self._owner = owner

    async def mark_read(self, job: Job) -> None:
        """Blue ticks and the typing indicator are a courtesy: their failure stops nothing."""
        try:
            await job.graph.mark_read(job.row.message_id)
        except GraphAPIError as exc:
            log.info("mark_read failed for %s: %s", short_hash(job.row.message_id), exc)

    async def deliver(self, job: Job, outcome: Outcome) -> Outcome:
        """Send the outcome's reply, if any; the outcome then says what really happened."""
        if outcome.reply is None:
            return outcome
        try:
            await self._send_text(job, outcome.reply)
        except GraphAPIError as exc:
            state = (
                MessageState.EXPIRED if exc.code == GRAPH_OUTSIDE_WINDOW else MessageState.FAILED
            )
            return Outcome(None, state, f"send failed: {exc}", command=outcome.command)
        return outcome

    async def _send_text(self, job: Job, reply: str) -> None:
        """Send the reply in order, part by part, remembering how far it got.

        Parts are paced (PART_INTERVAL_SECONDS) to stay within Meta's per-user pair rate.
        """
        row = job.row
        parts = split_message(markdown_to_whatsapp(reply))
        for index in range(row.parts_sent, len(parts)):
            if index > row.parts_sent:
                await pause_between_parts(self._settings.part_interval_seconds)
            await job.graph.send_text(row.recipient, parts[index])
            if len(parts) > 1:
                await self._store.inbox.mark_parts_sent(row.id, self._owner, index + 1)
