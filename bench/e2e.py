"""Section 2, end to end: every message answered once, its overhead, the backlog, the memory.

Messages are posted at a fixed rate from many users against the fakes; the baseline is the same
fake round trip made directly by the bench process, without the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from pathlib import Path

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from bench import servers
from bench.fake_client import Fake
from bench.load import Connection, open_loop, percentile, post_request, question, sender, webhooks
from bench.plan import Plan
from bench.proc import (
    MEMORY_NOTE,
    cpu_seconds,
    cpu_share,
    idle_memory,
    rss_now,
    sampling_pss,
    tree_label,
)
from bench.report import Row, Section, mib, ms, ratio, verdict
from storage.store import Store


class InboxBacklog:
    """Unanswered messages in the service's SQLite inbox, counted by the store's own query
    (`Inbox.count_unfinished`) over a read-only connection from outside."""

    def __init__(self, database: Path) -> None:
        url = f"sqlite+aiosqlite:///file:{database}?mode=ro&uri=true"
        self._store = Store.over(create_async_engine(url, connect_args={"timeout": 1}))

    async def count(self) -> int | None:
        try:
            return await self._store.inbox.count_unfinished()
        except DBAPIError:  # not there yet, or busy beyond the timeout
            return None

    async def close(self) -> None:
        await self._store.close()


async def direct_round_trips(fake: Fake, rate: int, duration: float) -> dict[str, float]:
    """The baseline: bench -> fake Gemini -> fake Graph, no service; wall time of each start."""
    port = fake.process.port
    phone = servers.PHONE_NUMBER_ID
    idle: list[Connection] = []
    slot = asyncio.Semaphore(512)
    started: dict[str, float] = {}

    async def one(index: int, scheduled: float) -> None:
        message_id = f"wamid.bench-direct-{index:07d}"
        gemini_body = json.dumps(
            {
                "contents": [{"role": "user", "parts": [{"text": question(message_id)}]}],
                "systemInstruction": {"parts": [{"text": "You are a benchmark."}]},
            }
        ).encode()
        graph_body = json.dumps(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": sender(index % 500),
                "type": "text",
                "text": {"body": f"*Echo:* {question(message_id)}", "preview_url": False},
            }
        ).encode()
        async with slot:
            while idle and idle[-1].closed:  # the fake closes connections idle over 5 s
                idle.pop()
            conn = idle.pop() if idle else await Connection.open(port)
            started[message_id] = time.time()
            await conn.request(post_request(port, "/v1beta/models/m:generateContent", gemini_body))
            await conn.request(post_request(port, f"/v25.0/{phone}/messages", graph_body))
            idle.append(conn)

    count = max(1, int(rate * duration))
    start = time.perf_counter() + 0.05
    tasks = []
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, start + index / rate)))
    _, unfinished = await asyncio.wait(tasks, timeout=30)
    for task in unfinished:
        task.cancel()
    for conn in idle:
        conn.close()
    return started


def overheads(started: dict[str, float], received: dict[str, float], delay: float) -> list[float]:
    return [received[m] - t - delay for m, t in started.items() if m in received]


async def end_to_end(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("2. End to end")
    rate, users, delay = plan.e2e_rate, plan.e2e_users, plan.gemini_delay

    await fake.reset(delay=delay)
    direct = await direct_round_trips(fake, rate, plan.e2e_baseline_seconds)
    await fake.wait_sent(len(direct), 15)
    direct_received, _ = await fake.sent_times()
    base = overheads(direct, direct_received, delay)

    await fake.reset(delay=delay)
    svc_dir = workdir / "e2e"
    posted: dict[int, float] = {}  # filled by the load generator as it sends
    drain_limit = min(90.0, delay + 30 + plan.e2e_seconds / 2)
    samples: list[tuple[float, int, int | None]] = []  # (t, posted - answered, inbox backlog)
    settings = plan.service_settings()
    with servers.service(svc_dir, fake.process.url, **settings) as svc:
        idle, idle_pss = await idle_memory(svc.pid)
        started = time.monotonic()
        stop_sampling = asyncio.Event()
        inbox = InboxBacklog(svc_dir / "assistant.db")

        async def sample() -> None:
            while not stop_sampling.is_set():
                answered = (await fake.stats())["sent"]
                backlog = await inbox.count()
                samples.append((time.monotonic() - started, len(posted) - answered, backlog))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_sampling.wait(), 1.0)

        sampler = asyncio.create_task(sample())
        make = webhooks(svc.port, "e2e", users)
        cpu_before = cpu_seconds(svc.pid)
        try:
            async with sampling_pss(svc.pid) as pss:
                result = await open_loop(
                    svc.port,
                    make,
                    rate=rate,
                    duration=plan.e2e_seconds,
                    drain_timeout=30,
                    sent_at=posted,
                )
                posting_done = time.monotonic() - started
                drained = await fake.wait_sent(result.completed, drain_limit)
                drain_seconds = time.monotonic() - started - posting_done
        finally:
            stop_sampling.set()
            await sampler
            await inbox.close()
        service_cpu = cpu_share(svc.pid, cpu_before, time.monotonic() - started)
        peak = rss_now(svc.pid)
        received, duplicates = await fake.sent_times()
        stats = await fake.stats()
    sent_at = {f"wamid.bench-e2e-{i:07d}": wall for i, wall in posted.items()}
    ours = overheads(sent_at, received, delay)
    ours += [math.inf] * (len(sent_at) - len(ours))  # unanswered: worse than any figure
    answered = sum(1 for m in sent_at if m in received)
    b50, b99 = percentile(base, 50), percentile(base, 99)
    o50, o99 = percentile(ours, 50), percentile(ours, 99)
    little = rate * delay
    max_backlog = max((s[1] for s in samples), default=0)
    inbox_values = [s[2] for s in samples if s[2] is not None]
    max_inbox = max(inbox_values, default=-1)
    bounded = max_backlog <= 2 * little and drained >= result.completed
    section.rows += [
        Row(
            "every message answered",
            f"{len(base)}/{len(direct)} (direct)",
            f"{answered}/{result.completed} posted, {duplicates} dup.",
            ratio(answered, result.completed),
            "all, once",
            verdict(answered == result.completed == result.scheduled and duplicates == 0),
        ),
        Row(
            "overhead per message p50",
            ms(b50),
            ms(o50),
            ratio(o50, b50),
            "< 50 ms",
            verdict(o50 < 0.050),
        ),
        Row("overhead per message p99", ms(b99), ms(o99), ratio(o99, b99)),
        Row(
            "backlog (posted − answered), max",
            f"{little:.0f} (rate × Gemini time)",
            f"{max_backlog} (inbox max {max_inbox})",
            ratio(max_backlog, little),
            "bounded, drained",
            verdict(bounded),
        ),
        Row(
            f"service peak RSS, {tree_label(peak)} (sum of VmHWM)",
            f"{mib(idle.rss_kib)} idle (sum of VmRSS)",
            mib(peak.hwm_kib),
            ratio(peak.hwm_kib, idle.rss_kib),
            "≤ 200 MB",
            verdict(0 < peak.hwm_kib * 1024 <= 200e6),
        ),
        Row(
            f"service peak PSS, {tree_label(peak)} (sum, sampled 1/s)",
            f"{mib(idle_pss)} idle",
            mib(pss.peak_kib),
            ratio(pss.peak_kib, idle_pss),
        ),
    ]
    step = max(1, len(samples) // 12)
    section.details.append(
        (
            ["t (s)", "posted − answered", "inbox pending + processing"],
            [
                [f"{t:.0f}", str(b), "n/a" if i is None else str(i)]
                for t, b, i in samples[::step] + samples[-1:]
            ],
        )
    )
    section.notes += [
        (
            f"{rate} messages/s from {users} users for {plan.e2e_seconds:.0f} s (open loop, "
            f"achieved {result.achieved_rate:.1f}/s, {result.errors} errors), fake Gemini "
            f"{delay:.0f} s per answer, MAX_CONCURRENCY={plan.concurrency} (the default 32 "
            f"answers at most {32 / delay:.0f} messages/s), WORKER_PROCESSES="
            f"{plan.worker_processes}. {answered} of {result.completed} "
            f"answered (drain limit {drain_limit:.0f} s; the drain took {drain_seconds:.1f} s "
            "after the last post); service CPU (web and worker processes together) "
            f"{service_cpu} of one core over the run; fake "
            f"{stats['read']} read receipts, {stats['gemini']} Gemini calls."
        ),
        (
            "Overhead = time the fake Graph received the reply − time the webhook was posted − "
            f"{delay:.0f} s of Gemini. Baseline: the same fake round trip made directly by the "
            f"bench process (fake Gemini, then fake Graph; no service) at {rate}/s for "
            f"{plan.e2e_baseline_seconds:.0f} s. Ours includes the read receipt + typing indicator "
            "call, the database work and the worker's scheduling."
        ),
        (
            f"Backlog is sampled once a second; by Little's law about {little:.0f} messages are "
            "waiting for Gemini at any time at this rate."
        ),
        MEMORY_NOTE.format(samples=pss.samples),
    ]
    return section
