"""The dispatcher: claims recorded messages, holds their leases, and purges what is old."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from answering.bursts import Burst, burst_of, commands_of
from answering.commands import command_of
from answering.handoff import TIMED_OUT
from answering.job import Outcome
from answering.pipeline import Pipeline
from answering.windows import INBOX_RETENTION_SECONDS
from config import Settings
from domain.types import ConversationState, MessageState
from ops.logs import short_hash
from storage.inbox import InboxRow
from storage.store import Store
from webhook.arrivals import Arrival

log = logging.getLogger(__name__)

CLAIM_BATCH = 16
DISPATCH_COALESCE_SECONDS = 0.01
DUE_MARGIN_SECONDS = 0.005  # the loop's timer may fire a hair early


async def resume_abandoned(store: Store) -> None:
    """Take back what an earlier run held; only for a database no other process uses."""
    released = await store.inbox.release_leases()
    if released:
        log.info("resuming %d message(s) left unanswered by the previous run", released)


class Dispatcher:
    """Claims inbox rows and has them answered: one user's messages in order, users in parallel.

    A single loop claims work (woken by new webhooks, finished answers, or a short poll so
    that rows recorded by other instances are seen too); each claimed row is answered in its
    own task, bounded by MAX_CONCURRENCY, with its lease renewed while it runs.

    With MESSAGE_DEBOUNCE_SECONDS, what is claimed is a user's burst, once it is due
    (`storage.bursts`); the loop sleeps until the soonest burst is due, with no timer per
    message, and a message's arrival only moves that time (and shows the typing indicator).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        pipeline: Pipeline,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._look_now = True
        self._look_at = 0.0  # when to look for work next, unless woken first
        self._waiting = False  # a burst not yet due was seen at the last look
        self._receipts: set[asyncio.Task[None]] = set()
        self._store = store
        self._pipeline = pipeline
        self.owner = pipeline.owner
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
        self._look_now = True
        self._idle.clear()
        self._wake.set()

    @property
    def debounce(self) -> float:
        return self._settings.message_debounce_seconds

    def arrived(self, arrivals: Sequence[Arrival]) -> None:
        """Messages were just recorded: each is marked read with the typing indicator now, and
        the user's burst is looked at once it can be due (without debounce: at once)."""
        if self.debounce <= 0 or any(a.command for a in arrivals):
            self.notify()  # a command is never delayed
            if self.debounce <= 0:
                return
        for arrival in arrivals:
            task = asyncio.create_task(self._pipeline.arrived(arrival))
            self._receipts.add(task)
            task.add_done_callback(self._receipts.discard)
        self._idle.clear()
        self._look_at = min(self._look_at, self._clock() + self.debounce + DUE_MARGIN_SECONDS)
        self._wake.set()  # the loop's sleep is shortened; nothing is queried now

    async def wait_idle(self) -> None:
        """Return once everything recorded so far has been answered (for tests and tools)."""
        self.notify()
        await self._idle.wait()

    async def settled(self) -> None:
        """`wait_idle` without looking for work sooner than the dispatcher would (the bench
        counts the statements a burst costs)."""
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
            if self._look_now or self._clock() >= self._look_at:
                await self._look()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, self._look_at - self._clock()))

    async def _look(self) -> None:
        self._look_now = False
        self._look_at = self._clock() + self._settings.poll_interval_seconds
        generation = self._generation
        try:
            await self._dispatch()
        except Exception:
            log.exception("dispatch failed; retrying at the next poll")
        if not self._tasks and not self._waiting and generation == self._generation:
            self._idle.set()
        if self._wake.is_set():
            # Busy: let a few more webhooks and finished answers arrive, then look once for
            # all of them, rather than querying the inbox again for each one.
            await asyncio.sleep(DISPATCH_COALESCE_SECONDS)

    async def purge(self) -> tuple[int, int]:
        """Forget turns older than HISTORY_TTL_DAYS and inbox rows past Meta's redelivery;
        give back to the assistant the conversations operators left quiet too long."""
        now = time.time()
        removed = await self._store.purge(
            turns_before=now - self._settings.history_ttl_days * 86400,
            inbox_before=now - INBOX_RETENTION_SECONDS,
        )
        if any(removed):
            log.info("purged %d old turn(s) and %d old inbox row(s)", *removed)
        if self._settings.console_enabled:
            timeout = self._settings.handoff_timeout_hours * 3600
            for key in await self._store.states.quiet_handoffs(now - timeout):
                await self._store.states.change(key, ConversationState.ASSISTANT, event=TIMED_OUT)
                log.info("conversation %s back to the assistant (timeout)", short_hash(key))
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
        if self.debounce > 0:
            await self._dispatch_bursts(free)
            return
        inbox = self._store.inbox
        candidates = await inbox.claimable(free)
        # Small batches: a long claiming transaction would keep webhooks waiting for the database.
        for start in range(0, len(candidates), CLAIM_BATCH):
            if self._stopping:
                return
            batch = candidates[start : start + CLAIM_BATCH]
            for row in await inbox.claim_many(batch, self.owner, self._settings.lease_seconds):
                self._start(row, None)

    async def _dispatch_bursts(self, free: int) -> None:
        """Claim the users whose bursts are due; sleep until the soonest of the others."""
        settings, bursts = self._settings, self._store.bursts
        timing = {
            "debounce": self.debounce,
            "longest": settings.message_debounce_max_seconds,
            "commands": commands_of(settings),
        }
        now = self._clock()
        ready = await bursts.ready(free, now=now, **timing)  # type: ignore[arg-type]
        later = [d.due for d in ready if d.due > now]
        self._waiting = bool(later)
        if later:
            self._look_at = min(self._look_at, min(later) + DUE_MARGIN_SECONDS)
        keys = [d.conversation_key for d in ready if d.due <= now]
        for start in range(0, len(keys), CLAIM_BATCH):
            if self._stopping:
                return
            claimed = await bursts.claim(
                keys[start : start + CLAIM_BATCH],
                self.owner,
                settings.lease_seconds,
                now=now,
                **timing,  # type: ignore[arg-type]
            )
            for rows in claimed:
                burst = burst_of(rows, lambda row: command_of(row, settings))
                if burst.rest:  # after a command: answered as a burst of their own
                    await bursts.release([row.id for row in burst.rest], self.owner)
                    self._look_now = True
                self._start(burst.anchor, burst)

    def _start(self, row: InboxRow, burst: Burst | None) -> None:
        task = asyncio.create_task(self._answer(row, burst), name=f"answer-{row.id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.notify()

    async def _answer(self, row: InboxRow, burst: Burst | None) -> None:
        """The error boundary: whatever happens, the row is closed and nothing is re-raised."""
        started = time.perf_counter()
        heartbeat = asyncio.create_task(self._keep_lease(row, burst))
        try:
            outcome = await self._pipeline.answer(row, burst)
            await self._pipeline.close(row, outcome, burst)
        except Exception:
            log.exception(
                "answering message %s failed",
                short_hash(row.message_id),
                extra=self._pipeline.log_fields(row, "answer"),
            )
            try:
                await self._pipeline.close(
                    row, Outcome(None, MessageState.FAILED, "internal error"), burst
                )
            except Exception:  # e.g. the database is down: the lease expires, another try follows
                log.exception("could not close message %s", short_hash(row.message_id))
        finally:
            heartbeat.cancel()
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "message %s from user %s handled in %.0f ms",
            short_hash(row.message_id),
            short_hash(row.conversation_key),
            duration_ms,
            extra=self._pipeline.log_fields(row, "answer", duration_ms=duration_ms),
        )

    async def _keep_lease(self, row: InboxRow, burst: Burst | None) -> None:
        """Renew the claim while the answer is worked on, so no other instance takes it over."""
        lease = self._settings.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if burst is None:
                    kept = await self._store.inbox.extend_lease(row.id, self.owner, lease)
                else:
                    row_ids = [r.id for r in burst.closing]
                    kept = await self._store.bursts.extend_leases(row_ids, self.owner, lease)
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.warning("lease renewal failed (%s)", type(exc).__name__)
                continue
            if not kept:
                log.warning("lost the claim on message %s", short_hash(row.message_id))
                return
