"""Answering one claimed message: triage, limits, media, Gemini, formatting, sending, closing."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from answering.inbound import FixedReply, Question, interpret, refusal
from answering.media import Attachment, MediaRefused
from answering.media import fetch as fetch_media
from answering.windows import outside_reply_window
from config import Settings
from domain.types import Command, MessageState, RateVerdict, Role, Turn
from llm import Gemini, LLMError
from markup.whatsapp import markdown_to_whatsapp, split_message
from ops.logs import short_hash
from ops.metrics import Metrics
from storage.inbox import InboxRow
from storage.rate_limits import Window
from storage.store import Store
from whatsapp import GraphAPIError, GraphClient, Kind

log = logging.getLogger(__name__)

RATE_LIMIT_NOTICE = (
    "You're sending messages faster than I can answer them. Please wait a little, then try again."
)
GRAPH_OUTSIDE_WINDOW = 131047


def ids(row: InboxRow, stage: str, **fields: object) -> dict[str, object]:
    """Structured log fields about one message: hashes of its ids, never the ids themselves."""
    return {
        "message_hash": short_hash(row.message_id),
        "user_hash": short_hash(row.user_key),
        "stage": stage,
        **fields,
    }


async def pause_between_parts(seconds: float) -> None:
    """The gap between the parts of one reply (Meta limits messages per user per second)."""
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What answering one message produced: the reply to send and how to close the row."""

    reply: str | None
    state: MessageState
    error: str | None = None
    turns: tuple[Turn, ...] = ()
    rate_limited: bool = False
    command: Command | None = None

    @property
    def label(self) -> str:
        """The outcome label of `assistant_messages_total`."""
        return "rate_limited" if self.rate_limited else self.state.value


class Pipeline:
    """Turns one claimed inbox row into a reply sent on WhatsApp, and closes the row.

    `answer` decides and sends; `close` records what happened. The dispatcher calls both and
    is the error boundary around them.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        graph: GraphClient,
        gemini: Gemini,
        metrics: Metrics,
        owner: str,
    ) -> None:
        self._settings = settings
        self._store = store
        self._graph = graph
        self._gemini = gemini
        self._metrics = metrics
        self.owner = owner

    async def answer(self, row: InboxRow) -> Outcome:
        """Decide what the message gets, send it, and say how the row should be closed."""
        plan = interpret(Kind.of(row.kind), row.text, row.payload, self._settings.max_input_chars)
        if isinstance(plan, FixedReply) and plan.text is None:
            log.info(
                "message %s of kind %s needs no reply",
                short_hash(row.message_id),
                row.kind,
                extra=ids(row, "triage"),
            )
            return Outcome(None, MessageState.DONE)
        if outside_reply_window(row, time.time()):
            return Outcome(None, MessageState.EXPIRED, "outside the 24-hour reply window")
        command = self._command(row)
        limited = None if command else await self._rate_limited(row)
        if limited is not None:
            return await self._deliver(row, limited)
        await self._mark_read(row)
        if command:
            outcome = await self._run_command(row, command)
        elif isinstance(plan, FixedReply):
            outcome = Outcome(plan.text, MessageState.DONE)
        else:
            outcome = await self._answer_question(row, plan)
        return await self._deliver(row, outcome)

    async def close(self, row: InboxRow, outcome: Outcome) -> None:
        """Record the outcome on the row (with the turns it adds), then what follows from it."""
        closed = await self._store.inbox.finish(
            row.id,
            self.owner,
            outcome.state,
            error=outcome.error,
            new_turns=[t for t in outcome.turns if t.text],
        )
        self._metrics.messages.labels(row.kind, outcome.label).inc()
        if outcome.error:
            log.warning(
                "message %s closed as %s: %s",
                short_hash(row.message_id),
                outcome.state,
                outcome.error,
                extra=ids(row, "close", state=outcome.state.value),
            )
        if not closed:
            log.warning("message %s was taken over before it closed", short_hash(row.message_id))
        if outcome.command is Command.FORGET:  # even if the confirmation could not be sent
            await self._store.conversations.forget(row.user_key)

    async def _deliver(self, row: InboxRow, outcome: Outcome) -> Outcome:
        """Send the outcome's reply, if any; the outcome then says what really happened."""
        if outcome.reply is None:
            return outcome
        try:
            await self._send(row, outcome.reply)
        except GraphAPIError as exc:
            state = (
                MessageState.EXPIRED if exc.code == GRAPH_OUTSIDE_WINDOW else MessageState.FAILED
            )
            return Outcome(None, state, f"send failed: {exc}", command=outcome.command)
        return outcome

    async def _rate_limited(self, row: InboxRow) -> Outcome | None:
        """Past RATE_LIMIT_PER_MINUTE or _PER_DAY: one notice per window, then silence."""
        settings = self._settings
        verdict = await self._store.rate_limits.check(
            row.user_key,
            row.received_at,
            [
                Window("minute", 60, settings.rate_limit_per_minute),
                Window("day", 86400, settings.rate_limit_per_day),
            ],
        )
        if verdict is RateVerdict.OK:
            return None
        log.info(
            "user %s is over a rate limit (%s)",
            short_hash(row.user_key),
            verdict,
            extra=ids(row, "rate_limit"),
        )
        notice = RATE_LIMIT_NOTICE if verdict is RateVerdict.NOTICE else None
        return Outcome(notice, MessageState.DONE, "rate limited", rate_limited=True)

    def _command(self, row: InboxRow) -> Command | None:
        """The privacy command this message is, if any (`/reset`, `/forget`)."""
        if row.kind != Kind.TEXT or not row.text:
            return None
        word = row.text.strip().lower()
        if word == self._settings.reset_command.lower():
            return Command.RESET
        if word == self._settings.forget_command.lower():
            return Command.FORGET
        return None

    async def _run_command(self, row: InboxRow, command: Command) -> Outcome:
        if command is Command.RESET:
            await self._store.conversations.reset(row.user_key)
            log.info("conversation of user %s reset", short_hash(row.user_key))
            return Outcome(self._settings.reset_reply, MessageState.DONE, command=command)
        log.info("user %s asked to be forgotten", short_hash(row.user_key))
        return Outcome(self._settings.forget_reply, MessageState.DONE, command=command)

    async def _answer_question(self, row: InboxRow, question: Question) -> Outcome:
        """Gemini's answer (or one saved before a crash), else a refusal or the apology."""
        if row.reply is not None:  # answered before a crash; only the sending was cut short
            return self._answered(question, row.reply)
        attachments: list[Attachment] = []
        if question.media is not None:
            try:
                attachments.append(
                    await fetch_media(self._graph, question.media, self._limit(question.media.kind))
                )
            except MediaRefused as exc:
                log.info(
                    "media of message %s refused: %s",
                    short_hash(row.message_id),
                    exc.reason,
                    extra=ids(row, "media"),
                )
                return Outcome(refusal(exc), MessageState.DONE, f"media {exc.reason}")
        settings = self._settings
        history = await self._store.conversations.history(
            row.user_key, settings.history_turns, settings.history_max_chars
        )
        started = time.perf_counter()
        try:
            answer = await self._gemini.generate(
                settings.system_prompt,
                history,
                question.text,
                max_output_tokens=settings.max_output_tokens,
                attachments=attachments,
            )
        except LLMError as exc:
            self._metrics.gemini_failures.inc()
            return self._apology(row, question, exc.reason)
        finally:
            self._metrics.gemini_latency.observe(time.perf_counter() - started)
        self._metrics.gemini_tokens.labels("prompt").inc(answer.prompt_tokens)
        self._metrics.gemini_tokens.labels("output").inc(answer.output_tokens)
        self._metrics.gemini_tokens.labels("thinking").inc(answer.thinking_tokens)
        if not markdown_to_whatsapp(answer.text).strip():
            return self._apology(row, question, "answer empty once formatted for WhatsApp")
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "gemini answered message %s in %.0f ms (%d prompt, %d output tokens)",
            short_hash(row.message_id),
            duration_ms,
            answer.prompt_tokens,
            answer.output_tokens,
            extra=ids(
                row,
                "gemini",
                duration_ms=duration_ms,
                prompt_tokens=answer.prompt_tokens,
                output_tokens=answer.output_tokens,
            ),
        )
        await self._store.inbox.save_reply(row.id, self.owner, answer.text)
        return self._answered(question, answer.text)

    def _limit(self, kind: Kind) -> int:
        settings = self._settings
        return {
            Kind.IMAGE: settings.max_image_bytes,
            Kind.AUDIO: settings.max_audio_bytes,
            Kind.VIDEO: settings.max_video_bytes,
        }.get(kind, settings.max_document_bytes)

    def _apology(self, row: InboxRow, question: Question, reason: str) -> Outcome:
        """The user gets a short apology rather than silence; the cause goes to the log."""
        log.warning(
            "gemini gave no answer for message %s: %s",
            short_hash(row.message_id),
            reason,
            extra=ids(row, "gemini"),
        )
        user_turn = (Turn(Role.USER, question.remembered_as),)
        return Outcome(
            self._settings.fallback_message, MessageState.FAILED, reason[:255], user_turn
        )

    @staticmethod
    def _answered(question: Question, reply: str) -> Outcome:
        turns = (Turn(Role.USER, question.remembered_as), Turn(Role.MODEL, reply))
        return Outcome(reply, MessageState.DONE, None, turns)

    async def _mark_read(self, row: InboxRow) -> None:
        """Blue ticks and the typing indicator are a courtesy: their failure stops nothing."""
        try:
            await self._graph.mark_read(row.message_id)
        except GraphAPIError as exc:
            log.info("mark_read failed for %s: %s", short_hash(row.message_id), exc)

    async def _send(self, row: InboxRow, reply: str) -> None:
        """Send the reply in order, part by part, remembering how far it got.

        Parts are paced (PART_INTERVAL_SECONDS) to stay within Meta's per-user pair rate.
        """
        parts = split_message(markdown_to_whatsapp(reply))
        for index in range(row.parts_sent, len(parts)):
            if index > row.parts_sent:
                await pause_between_parts(self._settings.part_interval_seconds)
            await self._graph.send_text(row.recipient, parts[index])
            if len(parts) > 1:
                await self._store.inbox.mark_parts_sent(row.id, self.owner, index + 1)
