"""Sending a reply on WhatsApp: a read receipt, then the reply (a voice note, or text parts)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from actions.choices import interactive
from answering.bursts import Typing
from answering.job import Answer, Job, Outcome
from answering.speaking import Speaker, Voiced, wants_voice
from answering.token_refusal import TOKEN_REFUSED, token_refused
from answering.windows import outside_reply_window
from config import Settings
from domain.types import MessageState
from markup.whatsapp import markdown_to_whatsapp, split_message
from ops.logs import short_hash
from storage.delivery import SentMessage
from storage.store import Store
from whatsapp import GraphAPIError

log = logging.getLogger(__name__)

GRAPH_OUTSIDE_WINDOW = 131047


async def pause_between_parts(seconds: float) -> None:
    """The gap between the parts of one reply (Meta limits messages per user per second)."""
    await asyncio.sleep(seconds)


async def keep_for_statuses(store: Store, message: SentMessage, **log_extra: object) -> None:
    """Keep a message Meta accepted, so that its statuses find it. A failure here is logged and
    stops nothing: the message went out, and sending it again would be worse."""
    try:
        await store.delivery.sent([message])
    except Exception as exc:
        log.warning(
            "message sent in %s not kept for its statuses: %s",
            short_hash(message.conversation_key),
            type(exc).__name__,
            extra=log_extra,
        )


class Sender:
    """Delivers an outcome's reply through the message's business number."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        owner: str,
        speaker: Speaker | None = None,
        typing: Typing | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._owner = owner
        self._speaker = speaker
        self._typing = typing or Typing()

    async def read_receipt(self, job: Job) -> Outcome | None:
        """The pipeline's read-receipt step: blue ticks and the typing indicator are a
        courtesy, and their failure stops nothing but Meta refusing the business's token.
        A burst's latest message marked read at its arrival by this process is not marked
        again (marking it marks the earlier ones too)."""
        message_id = job.row.message_id
        shown = self._typing.shown_at(message_id) is not None
        if shown and (job.earlier or self._settings.message_debounce_seconds > 0):
            return None
        try:
            await job.graph.mark_read(message_id)
            self._typing.shown(message_id)
        except GraphAPIError as exc:
            log.info("mark_read failed for %s: %s", short_hash(job.row.message_id), exc)
            if exc.code == TOKEN_REFUSED:
                return await token_refused(job, self._store)
        return None

    async def deliver(self, job: Job, outcome: Outcome) -> Outcome:
        """Send the outcome's reply, if any; the outcome then says what really happened.

        Gemini's answers go as a voice note where VOICE_REPLIES wants one (the text if that
        fails); a reply quotes the message it answers when the user wrote again since. What
        closing the row does (`then`) holds whether or not the reply went out.
        """
        text = outcome.text
        if text is None:
            return outcome
        use = outcome.use
        try:
            reply_to = await self._quote(job, outcome)
            voiced = await self._spoken(job, outcome, reply_to)
            use += voiced.use
            if not voiced.sent and not await self._send_choices(job, outcome, reply_to):
                await self._send_text(job, text, reply_to)
        except GraphAPIError as exc:
            if exc.code == TOKEN_REFUSED:
                refused = await token_refused(job, self._store)
                return Outcome(None, refused.state, refused.error, then=outcome.then, use=use)
            state = (
                MessageState.EXPIRED if exc.code == GRAPH_OUTSIDE_WINDOW else MessageState.FAILED
            )
            return Outcome(None, state, f"send failed: {exc}", then=outcome.then, use=use)
        return replace(outcome, use=use)

    async def _quote(self, job: Job, outcome: Outcome) -> str | None:
        """The message to quote: a burst's message that arrived while the previous answer
        went out, else the one answered, when the user has written since (known already
        when Gemini's answer was saved)."""
        if job.quote is not None:
            return job.quote
        reply = outcome.reply
        written_after = reply.written_after if isinstance(reply, Answer) else None
        if written_after is None:
            written_after = await self._store.inbox.written_after(job.row)
        return job.row.message_id if written_after else None

    async def _send_choices(self, job: Job, outcome: Outcome, reply_to: str | None) -> bool:
        """Gemini's choices as reply buttons or a list, where they fit and WhatsApp's 24-hour
        window is open; False: the reply goes as text (the options numbered in it)."""
        row, answer = job.row, outcome.reply
        choices = answer.choices if isinstance(answer, Answer) else None
        if choices is None or row.parts_sent or outside_reply_window(row, time.time()):
            return False
        message = interactive(choices, job.language)
        if message is None:
            return False
        await job.graph.send_interactive(row.recipient, message, reply_to=reply_to)
        return True

    async def _spoken(self, job: Job, outcome: Outcome, reply_to: str | None) -> Voiced:
        """Send Gemini's answer as a voice note where wanted; Voiced.sent once it went out."""
        row, answer = job.row, outcome.reply
        if self._speaker is None or not isinstance(answer, Answer) or row.parts_sent:
            return Voiced(False)  # a reply half sent as text before a crash goes on as text
        if answer.choices is not None:  # the options are to be tapped, not listened to
            return Voiced(False)
        if not wants_voice(job):
            return Voiced(False)
        voiced = await self._speaker.send(job, answer.text, reply_to)
        if voiced.sent:
            await self._keep(job, voiced.message_id, "audio")
            await self._keep_voice(job, voiced.note)
            parts = len(split_message(markdown_to_whatsapp(answer.text)))
            await self._store.inbox.mark_parts_sent(row.id, self._owner, parts)  # all of it
        return voiced

    async def _send_text(self, job: Job, reply: str, reply_to: str | None) -> None:
        """Send the reply in order, part by part, remembering how far it got; the first part
        quotes `reply_to`.

        Parts are paced (PART_INTERVAL_SECONDS) to stay within Meta's per-user pair rate.
        """
        row = job.row
        parts = split_message(markdown_to_whatsapp(reply))
        for index in range(row.parts_sent, len(parts)):
            if index > row.parts_sent:
                await pause_between_parts(self._settings.part_interval_seconds)
            quote = reply_to if index == 0 else None
            wamid = await job.graph.send_text(row.recipient, parts[index], reply_to=quote)
            await self._keep(job, wamid, "text")
            if len(parts) > 1:
                await self._store.inbox.mark_parts_sent(row.id, self._owner, index + 1)

    async def _keep_voice(self, job: Job, note: bytes) -> None:
        """The voice note's Ogg, for the console's transcript (it exists nowhere else). A
        failure here is logged and stops nothing: the answer went out."""
        row = job.row
        try:
            await self._store.media.keep_voice_answer(
                conversation_key=row.conversation_key,
                phone_number_id=row.phone_number_id,
                inbox_id=row.id,
                data=note,
            )
        except Exception as exc:
            log.warning(
                "voice note of %s not kept for the console: %s",
                short_hash(row.message_id),
                type(exc).__name__,
                extra=job.log_fields("voice"),
            )

    async def _keep(self, job: Job, wamid: str | None, kind: str) -> None:
        if not wamid:
            return
        row = job.row
        sent = SentMessage(wamid, row.conversation_key, row.phone_number_id, kind, inbox_id=row.id)
        await keep_for_statuses(self._store, sent, **job.log_fields("delivery"))
