"""Answers the inbox: claims recorded messages and turns each into a reply sent on WhatsApp."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from config import Settings
from formatting import markdown_to_whatsapp, split_message
from inbound import FixedReply, Question, interpret, refusal
from llm import Gemini, LLMError, Turn, gemini_http_client
from media import Attachment, MediaRefused
from media import fetch as fetch_media
from metrics import Metrics
from store import DONE, EXPIRED, FAILED, InboxRow, Store
from whatsapp import GraphAPIError, GraphClient, Kind, graph_http_client, short_hash

log = logging.getLogger(__name__)

RATE_LIMIT_NOTICE = (
    "You're sending messages faster than I can answer them. Please wait a little, then try again."
)
# WhatsApp allows free-form replies for 24 hours after the user's message; keep a safety margin.
REPLY_WINDOW_SECONDS = 24 * 3600 - 120
# Meta redelivers for up to 7 days: inbox rows are kept a day longer so dedup holds throughout.
INBOX_RETENTION_SECONDS = 8 * 24 * 3600
GRAPH_OUTSIDE_WINDOW = 131047
CLAIM_BATCH = 16
DISPATCH_COALESCE_SECONDS = 0.01


def written_at(row: InboxRow) -> float:
    """When the user wrote the message, which starts WhatsApp's 24-hour reply window.

    Meta's timestamp, unless it is missing or older than Meta's 7-day redelivery horizon
    (then it cannot be a real delivery time, and the time this service received it is used).
    """
    if row.sent_at and row.received_at - row.sent_at < INBOX_RETENTION_SECONDS:
        return min(float(row.sent_at), row.received_at)
    return row.received_at


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


async def resume_abandoned(store: Store) -> None:
    released = await store.release_leases()
    if released:
        log.info("resuming %d message(s) left unanswered by the previous run", released)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    *,
    graph_transport: httpx.AsyncBaseTransport | None = None,
    resume: bool = True,
) -> AsyncIterator[Worker]:
    """A started Worker with its own Graph and Gemini clients; stopped and closed on exit.

    `graph_transport` replaces the network under the Graph API client (the playground
    prints what would be sent to WhatsApp instead of sending it).
    """
    graph_http = graph_http_client(
        settings.graph_api_base_url,
        settings.whatsapp_token.get_secret_value(),
        settings.graph_timeout_seconds,
        transport=graph_transport,
    )
    gemini_http = gemini_http_client(settings.gemini_timeout_seconds, settings.max_concurrency + 4)
    gemini = Gemini(
        api_key=settings.gemini_api_key.get_secret_value(),
        model=settings.gemini_model,
        http=gemini_http,
        base_url=settings.gemini_base_url,
        timeout_seconds=settings.gemini_timeout_seconds,
        max_attempts=settings.gemini_max_attempts,
        base_delay=settings.retry_base_delay_seconds,
        max_delay=settings.retry_max_delay_seconds,
    )
    graph = GraphClient(
        graph_http,
        version=settings.graph_api_version,
        phone_number_id=settings.phone_number_id,
        max_attempts=settings.graph_max_attempts,
        base_delay=settings.retry_base_delay_seconds,
        max_delay=settings.retry_max_delay_seconds,
        observer=metrics.observe_graph,
    )
    worker = Worker(settings=settings, store=store, graph=graph, gemini=gemini, metrics=metrics)
    metrics.in_flight.set_function(lambda: worker.in_flight)
    try:
        await worker.start(resume=resume)
        yield worker
    finally:
        await worker.stop(settings.shutdown_grace_seconds)
        await gemini.aclose()
        await gemini_http.aclose()
        await graph_http.aclose()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What answering one message produced: the reply to send and how to close the row."""

    reply: str | None
    state: str
    error: str | None = None
    turns: tuple[Turn, ...] = ()


class Worker:
    """Claims inbox rows and answers them: one user's messages in order, users in parallel.

    A single dispatch loop claims work (woken by new webhooks, finished answers, or a short
    poll so that rows recorded by other instances are seen too); each claimed row is answered
    in its own task, bounded by MAX_CONCURRENCY, with its lease renewed while it runs.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        graph: GraphClient,
        gemini: Gemini,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics or Metrics()
        self._store = store
        self._graph = graph
        self._gemini = gemini
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, *, resume: bool = True) -> None:
        """Start answering; `resume`: first take back what an earlier run of this process held.

        Only for SQLite, whose file belongs to one service: there, whatever was claimed when
        the service stopped was claimed by the service's previous run. (With worker processes
        the web process does this once, before it starts them.)
        """
        if resume and self._store.is_sqlite:
            await resume_abandoned(self._store)
        self._loop = asyncio.create_task(self._run(), name="inbox-dispatcher")
        self._housekeeping = asyncio.create_task(self._purge_periodically(), name="purge")

    def notify(self) -> None:
        """New work may be waiting: look now instead of at the next poll."""
        self._generation += 1
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Return once everything recorded so far has been answered (for tests and tools)."""
        self.notify()
        await self._idle.wait()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming, let in-flight answers finish within the grace period, drop the rest."""
        # The loop is asked to stop rather than cancelled: a cancel landing inside a database
        # call can leave the connection (and shutdown) hanging.
        self._stopping = True
        self._wake.set()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.wait([self._housekeeping], timeout=5)
        if self._loop is not None:
            await self._loop
        if self._tasks:
            log.info("waiting up to %.0fs for %d answer(s)", grace_seconds, len(self._tasks))
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished, timeout=5)
                log.warning("%d answer(s) cut off at shutdown; retried later", len(unfinished))

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            generation = self._generation
            try:
                await self._dispatch()
            except Exception:
                log.exception("dispatch failed; retrying at the next poll")
            if not self._tasks and generation == self._generation:
                self._idle.set()
            if self._wake.is_set():
                # Busy: let a few more webhooks and finished answers arrive, then look once for
                # all of them, rather than querying the inbox again for each one.
                await asyncio.sleep(DISPATCH_COALESCE_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval_seconds)

    async def purge(self) -> tuple[int, int]:
        """Forget turns older than HISTORY_TTL_DAYS and inbox rows past Meta's redelivery."""
        now = time.time()
        removed = await self._store.purge(
            turns_before=now - self._settings.history_ttl_days * 86400,
            inbox_before=now - INBOX_RETENTION_SECONDS,
        )
        if any(removed):
            log.info("purged %d old turn(s) and %d old inbox row(s)", *removed)
        return removed

    async def _purge_periodically(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:
                log.exception("purge failed; trying again later")
            await asyncio.sleep(self._settings.purge_interval_seconds)

    async def _dispatch(self) -> None:
        free = self._settings.max_concurrency - len(self._tasks)
        if free <= 0:
            return
        candidates = await self._store.claimable(free)
        # Small batches: a long claiming transaction would keep webhooks waiting for the database.
        for start in range(0, len(candidates), CLAIM_BATCH):
            if self._stopping:
                return
            batch = candidates[start : start + CLAIM_BATCH]
            for row in await self._store.claim_many(
                batch, self.owner, self._settings.lease_seconds
            ):
                task = asyncio.create_task(self._answer(row), name=f"answer-{row.id}")
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.notify()

    async def _answer(self, row: InboxRow) -> None:
        """The error boundary: whatever happens, the row is closed and nothing is re-raised."""
        started = time.perf_counter()
        heartbeat = asyncio.create_task(self._keep_lease(row))
        try:
            await self._process(row)
        except Exception:
            log.exception(
                "answering message %s failed", short_hash(row.message_id), extra=ids(row, "answer")
            )
            try:
                await self._close(row, Outcome(None, FAILED, "internal error"))
            except Exception:  # e.g. the database is down: the lease expires, another try follows
                log.exception("could not close message %s", short_hash(row.message_id))
        finally:
            heartbeat.cancel()
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "message %s from user %s handled in %.0f ms",
            short_hash(row.message_id),
            short_hash(row.user_key),
            duration_ms,
            extra=ids(row, "answer", duration_ms=duration_ms),
        )

    async def _keep_lease(self, row: InboxRow) -> None:
        """Renew the claim while the answer is worked on, so no other instance takes it over."""
        lease = self._settings.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                kept = await self._store.extend_lease(row.id, self.owner, lease)
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.warning("lease renewal failed (%s)", type(exc).__name__)
                continue
            if not kept:
                log.warning("lost the claim on message %s", short_hash(row.message_id))
                return

    async def _process(self, row: InboxRow) -> None:
        plan = interpret(Kind.of(row.kind), row.text, row.payload, self._settings.max_input_chars)
        if isinstance(plan, FixedReply) and plan.text is None:
            log.info(
                "message %s of kind %s needs no reply",
                short_hash(row.message_id),
                row.kind,
                extra=ids(row, "triage"),
            )
            await self._close(row, Outcome(None, DONE))
            return
        if time.time() - written_at(row) > REPLY_WINDOW_SECONDS:
            await self._close(row, Outcome(None, EXPIRED, "outside the 24-hour reply window"))
            return
        command = self._command(row)
        limited = None if command else await self._rate_limited(row)
        if limited is not None:
            await self._finish(row, limited)
            return
        await self._mark_read(row)
        if command:
            outcome = await self._run_command(row, command)
        elif isinstance(plan, FixedReply):
            outcome = Outcome(plan.text, DONE)
        else:
            outcome = await self._answer_question(row, plan)
        await self._finish(row, outcome)
        if command == self._settings.forget_command.lower() and outcome.state == DONE:
            await self._store.forget_user(row.user_key)

    async def _finish(self, row: InboxRow, outcome: Outcome) -> None:
        """Send the outcome's reply, if any, then close the row with what really happened."""
        if outcome.reply is not None:
            try:
                await self._send(row, outcome.reply)
            except GraphAPIError as exc:
                state = EXPIRED if exc.code == GRAPH_OUTSIDE_WINDOW else FAILED
                outcome = Outcome(None, state, f"send failed: {exc}")
        await self._close(row, outcome)

    async def _rate_limited(self, row: InboxRow) -> Outcome | None:
        """Past RATE_LIMIT_PER_MINUTE or _PER_DAY: one notice per window, then silence."""
        settings = self._settings
        verdict = await self._store.rate_limit(
            row.user_key,
            row.received_at,
            [
                ("minute", 60, settings.rate_limit_per_minute),
                ("day", 86400, settings.rate_limit_per_day),
            ],
        )
        if verdict == "ok":
            return None
        log.info(
            "user %s is over a rate limit (%s)",
            short_hash(row.user_key),
            verdict,
            extra=ids(row, "rate_limit"),
        )
        return Outcome(RATE_LIMIT_NOTICE if verdict == "notice" else None, DONE, "rate limited")

    def _command(self, row: InboxRow) -> str | None:
        """The privacy command this message is, if any (`/reset`, `/forget`), lower-cased."""
        if row.kind != Kind.TEXT.value or not row.text:
            return None
        word = row.text.strip().lower()
        commands = (self._settings.reset_command, self._settings.forget_command)
        return word if word in (c.lower() for c in commands) else None

    async def _run_command(self, row: InboxRow, command: str) -> Outcome:
        if command == self._settings.reset_command.lower():
            await self._store.reset_conversation(row.user_key)
            log.info("conversation of user %s reset", short_hash(row.user_key))
            return Outcome(self._settings.reset_reply, DONE)
        log.info("user %s asked to be forgotten", short_hash(row.user_key))
        return Outcome(self._settings.forget_reply, DONE)

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
                return Outcome(refusal(exc), DONE, f"media {exc.reason}")
        settings = self._settings
        history = await self._store.history(
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
        await self._store.save_reply(row.id, self.owner, answer.text)
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
        user_turn = (Turn("user", question.remembered_as),)
        return Outcome(self._settings.fallback_message, FAILED, reason[:255], user_turn)

    @staticmethod
    def _answered(question: Question, reply: str) -> Outcome:
        return Outcome(
            reply, DONE, None, (Turn("user", question.remembered_as), Turn("model", reply))
        )

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
                await self._store.mark_parts_sent(row.id, self.owner, index + 1)

    async def _close(self, row: InboxRow, outcome: Outcome) -> None:
        new_turns = [(t.role, t.text) for t in outcome.turns if t.text]
        closed = await self._store.finish(
            row.id, self.owner, outcome.state, error=outcome.error, new_turns=new_turns
        )
        outcome_label = "rate_limited" if outcome.error == "rate limited" else outcome.state
        self._metrics.messages.labels(row.kind, outcome_label).inc()
        if outcome.error:
            log.warning(
                "message %s closed as %s: %s",
                short_hash(row.message_id),
                outcome.state,
                outcome.error,
                extra=ids(row, "close", state=outcome.state),
            )
        if not closed:
            log.warning("message %s was taken over before it closed", short_hash(row.message_id))
