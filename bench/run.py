"""Run the benchmarks and write the table: `python -m bench [--quick] [--duration S] [--out PATH]`.

1. Webhook acknowledgement: the service beside a bare FastAPI endpoint, closed and open loop.
2. End to end: 100 messages/s from 500 users against fake Graph and Gemini (2 s per answer).
3. Cost: prompt size sent to Gemini for message #20 and #200 of one conversation.
4. Memory: 1,000 answers in flight at once.
5. CPU per message: each part of answering one message, beside the same work done by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import servers
from bench.budget import budget
from bench.load import (
    Connection,
    closed_loop,
    open_loop,
    percentile,
    post_request,
    question,
    sender,
    webhook_request,
)
from bench.report import Row, Section, background_load, mib, ms, ratio, render, verdict

ID_PATTERN = re.compile(r"wamid\.bench-[A-Za-z0-9-]+")


@dataclass(frozen=True)
class Plan:
    quick: bool
    saturation_seconds: float
    open_seconds: float
    e2e_seconds: float
    e2e_baseline_seconds: float
    conversation_length: int
    probes: tuple[int, int]
    in_flight: int
    worker_processes: int  # WORKER_PROCESSES of every service: the CPUs this run may use
    connections: int = 50
    open_rates: tuple[int, ...] = (100, 200, 400)
    e2e_rate: int = 100
    e2e_users: int = 500
    gemini_delay: float = 2.0
    concurrency: int = 400  # MAX_CONCURRENCY for sections 1 and 2 (100/s x 2 s needs >= 200)
    senders: int = 5000  # distinct users in section 1

    @classmethod
    def make(cls, quick: bool, duration: float | None) -> Plan:
        e2e = duration if duration is not None else (5.0 if quick else 60.0)
        return cls(
            quick=quick,
            saturation_seconds=2.0 if quick else 10.0,
            open_seconds=2.0 if quick else 10.0,
            e2e_seconds=e2e,
            e2e_baseline_seconds=min(e2e, 20.0),
            conversation_length=200,
            probes=(20, 200),
            in_flight=200 if quick else 1000,
            worker_processes=usable_cpus(),
        )


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Fake:
    """Control of the fake upstreams process (counts, sends, prompts, hold/release)."""

    def __init__(self, process: servers.Process, client: httpx.AsyncClient) -> None:
        self.process = process
        self.client = client

    async def call(self, action: str, method: str = "GET", **params: Any) -> Any:
        url = f"{self.process.url}/_bench/{action}"
        response = await self.client.request(method, url, params=params, timeout=70)
        response.raise_for_status()
        return response.json()

    async def reset(self, *, delay: float, hold: bool = False) -> None:
        await self.call("reset", "POST")
        await self.call("config", "POST", delay=delay, hold="1" if hold else "0")

    async def stats(self) -> dict[str, int]:
        result: dict[str, int] = await self.call("stats")
        return result

    async def wait_sent(self, count: int, within: float) -> int:
        """Wait (bounded) until the fake Graph has received `count` text messages."""
        deadline = time.monotonic() + within
        sent = 0
        while time.monotonic() < deadline:
            left = min(deadline - time.monotonic(), 30.0)
            sent = (await self.call("wait_sent", n=count, timeout=max(left, 0.01)))["sent"]
            if sent >= count:
                break
        return sent

    async def sent_times(self) -> tuple[dict[str, float], int]:
        """Receipt time of the first reply to each message id, and how many ids got more."""
        first: dict[str, float] = {}
        seen: Counter[str] = Counter()
        for item in await self.call("sent"):
            found = ID_PATTERN.search(item["text"])
            if found:
                seen[found.group()] += 1
                first.setdefault(found.group(), item["t"])
        return first, sum(1 for n in seen.values() if n > 1)


def rss_now(process: servers.Process) -> servers.TreeMemory:
    """VmRSS and VmHWM summed over the service's process tree (zeros once it is gone)."""
    try:
        return process.memory_kib()
    except OSError:
        return servers.TreeMemory()


def pss_now(process: servers.Process) -> int:
    try:
        return process.pss_kib()
    except OSError:
        return 0


@dataclass
class PssPeak:
    """The highest summed PSS of a process tree over samples about a second apart."""

    process: servers.Process
    peak_kib: int = 0
    samples: int = 0

    def sample(self) -> None:
        value = pss_now(self.process)
        if value:
            self.samples += 1
            self.peak_kib = max(self.peak_kib, value)


@contextlib.asynccontextmanager
async def sampling_pss(process: servers.Process, every: float = 1.0) -> AsyncIterator[PssPeak]:
    """Sample the tree's summed PSS every `every` seconds while the block runs, and at its end."""
    peak = PssPeak(process)
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await asyncio.to_thread(peak.sample)  # smaps_rollup walks page tables: not free
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    sampler = asyncio.create_task(loop())
    try:
        yield peak
    finally:
        stop.set()
        await sampler
        await asyncio.to_thread(peak.sample)


async def idle_memory(process: servers.Process) -> tuple[servers.TreeMemory, int]:
    """Summed VmRSS (and PSS) of the tree 1 s after start-up, its worker processes running."""
    await asyncio.sleep(1.0)
    return rss_now(process), pss_now(process)


def tree_label(memory: servers.TreeMemory) -> str:
    workers = max(memory.processes - 1, 0)
    return f"web + {workers} worker process{'' if workers == 1 else 'es'}"


def inbox_backlog(database: Path) -> int | None:
    """Unanswered messages in the service's SQLite inbox, read-only from outside."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        ) as conn:
            row = conn.execute(
                "SELECT count(*) FROM inbox WHERE state IN ('pending', 'processing')"
            ).fetchone()
            return int(row[0])
    except sqlite3.Error:
        return None


def cpu_share(process: servers.Process, before: float, seconds: float) -> str:
    try:
        return f"{(process.cpu_seconds() - before) / seconds * 100:.0f}%" if seconds > 0 else "n/a"
    except OSError:
        return "n/a"


MEMORY_NOTE = (
    "Memory covers the service's whole process tree: the web process (uvicorn) and its worker "
    "processes. Idle = their VmRSS (and PSS) summed 1 s after all of them had started. Peak RSS "
    "= their VmHWM summed at the end: an upper bound, as pages shared between the processes "
    "(interpreter, libraries) count once per process and each process peaks at its own time. "
    "Peak PSS = the highest sum of their PSS (`Pss:` of /proc/<pid>/smaps_rollup, shared pages "
    "divided among the processes sharing them: what the machine really spends) over {samples} "
    "samples about 1 s apart, so a shorter spike may be missed."
)


# ---------------------------------------------------------------------------------------------
# 1. Webhook acknowledgement


def webhooks(port: int, tag: str, senders: int) -> Callable[[int], bytes]:
    return lambda i: webhook_request(port, f"wamid.bench-{tag}-{i:07d}", sender(i % senders))


async def acknowledgement(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("1. Webhook ack")
    settings = {
        "max_concurrency": str(plan.concurrency),
        "worker_processes": str(plan.worker_processes),
    }
    cap = 200_000  # hard bound on requests per closed-loop run

    # a) closed loop
    sat: dict[str, tuple[float, float, float, int, str, str]] = {}
    for name in ("bare", "ours"):
        await fake.reset(delay=plan.gemini_delay)
        with contextlib.ExitStack() as stack:
            if name == "bare":
                proc = stack.enter_context(servers.bare_endpoint(workdir))
            else:
                proc = stack.enter_context(
                    servers.service(workdir / "ack-closed", fake.process.url, **settings)
                )
            cpu_before = proc.cpu_seconds()
            result = await closed_loop(
                proc.port,
                webhooks(proc.port, f"sat-{name}", plan.senders),
                connections=plan.connections,
                duration=plan.saturation_seconds,
                max_requests=cap,
            )
            server_cpu = cpu_share(proc, cpu_before, result.elapsed)
        client_cpu = f"{result.client_cpu / max(result.elapsed, 1e-9) * 100:.0f}%"
        sat[name] = (
            result.rate,
            percentile(result.latencies, 50),
            percentile(result.latencies, 99),
            result.errors,
            server_cpu,
            client_cpu,
        )
    b_rate, b_p50, b_p99 = sat["bare"][:3]
    o_rate, o_p50, o_p99 = sat["ours"][:3]
    c = plan.connections
    section.rows += [
        Row(
            f"closed loop, {c} conns: throughput",
            f"{b_rate:.0f} req/s",
            f"{o_rate:.0f} req/s",
            ratio(o_rate, b_rate),
            "≥ 0.50× bare",
            verdict(o_rate >= 0.5 * b_rate),
        ),
        Row(f"closed loop, {c} conns: p50", ms(b_p50), ms(o_p50), ratio(o_p50, b_p50)),
        Row(f"closed loop, {c} conns: p99", ms(b_p99), ms(o_p99), ratio(o_p99, b_p99)),
    ]
    section.details.append(
        (
            ["Closed loop", "req/s", "p50", "p99", "errors", "server CPU", "client CPU"],
            [
                [name, f"{r:.0f}", ms(p50), ms(p99), str(err), scpu, ccpu]
                for name, (r, p50, p99, err, scpu, ccpu) in sat.items()
            ],
        )
    )

    # b) open loop, our workers busy answering with a 2 s Gemini
    rows: list[list[str]] = []
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    with servers.bare_endpoint(workdir) as bare:
        for rate in plan.open_rates:
            bare_result = await open_loop(
                bare.port,
                webhooks(bare.port, f"open{rate}-bare", plan.senders),
                rate=rate,
                duration=plan.open_seconds,
            )
            results["bare", rate] = _open_row(rows, "bare", bare_result)
    for rate in plan.open_rates:
        await fake.reset(delay=plan.gemini_delay)
        workdir_rate = workdir / f"ack-open-{rate}"
        with servers.service(workdir_rate, fake.process.url, **settings) as svc:
            ours_result = await open_loop(
                svc.port,
                webhooks(svc.port, f"open{rate}-ours", plan.senders),
                rate=rate,
                duration=plan.open_seconds,
            )
            stats = await fake.stats()
        results["ours", rate] = _open_row(rows, "ours", ours_result)
        rows[-1][0] += f" (busy: {stats['gemini_in_flight_peak']} answers in flight at peak)"
    for rate in plan.open_rates:
        (b50, b99, bmax), (o50, o99, omax) = results["bare", rate], results["ours", rate]
        target = rate == 200
        section.rows += [
            Row(f"open loop {rate}/s: p50", ms(b50), ms(o50), ratio(o50, b50)),
            Row(
                f"open loop {rate}/s: p99",
                ms(b99),
                ms(o99),
                ratio(o99, b99),
                "≤ 15 ms" if target else "",
                verdict(o99 <= 0.015) if target else "",
            ),
            Row(f"open loop {rate}/s: max", ms(bmax), ms(omax), ratio(omax, bmax)),
        ]
    section.details.append(
        (
            [
                "Open loop",
                "target rate",
                "achieved rate",
                "ok / errors",
                "p50",
                "p99",
                "max",
                "client max lateness",
            ],
            rows,
        )
    )
    section.notes += [
        (
            f"Closed loop: {plan.connections} keep-alive connections for "
            f"{plan.saturation_seconds:.0f} s each; open loop: sends scheduled by the clock for "
            f"{plan.open_seconds:.0f} s per rate, latency counted from the scheduled send time "
            "(no coordinated omission). The client is one asyncio process (raw HTTP/1.1 over "
            "uvloop) shared by both servers; 'client max lateness' shows how far it fell behind "
            "its schedule. It keeps at most 512 requests outstanding: when a server falls that far "
            "behind, later sends wait for a connection (lateness, a lower achieved rate), and "
            "that wait still counts in their latency."
        ),
        (
            f"Ours: `uvicorn main:app`, SQLite in a temp dir, LOG_LEVEL=WARNING, MAX_CONCURRENCY="
            f"{plan.concurrency}, WORKER_PROCESSES={plan.worker_processes} (the CPUs this run "
            f"may use), fake Gemini {plan.gemini_delay:.0f} s per answer, so every "
            "webhook also becomes an answer being worked on; a fresh service (empty database) per "
            "run. Baseline: `uvicorn bench.bare:app`, same flags "
            "(`--host 127.0.0.1 --log-level warning`). Per-user rate limits are off in every "
            "service the bench starts (RATE_LIMIT_PER_MINUTE=0, RATE_LIMIT_PER_DAY=0): the loads "
            "send more per user than a person types."
        ),
        (
            "Each signed webhook has a unique message id; senders cycle over "
            f"{plan.senders} users. Server and client CPU are shares of one core over the run; "
            "ours counts the web process and its worker processes together."
        ),
    ]
    return section


def _open_row(rows: list[list[str]], name: str, result: Any) -> tuple[float, float, float]:
    p50, p99 = percentile(result.latencies, 50), percentile(result.latencies, 99)
    top = max(result.latencies) if result.latencies else math.nan
    rows.append(
        [
            name,
            f"{result.rate:.0f}/s",
            f"{result.achieved_rate:.0f}/s",
            f"{result.completed} / {result.errors}",
            ms(p50),
            ms(p99),
            ms(top),
            ms(result.max_lateness),
        ]
    )
    return p50, p99, top


# ---------------------------------------------------------------------------------------------
# 2. End to end


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
    settings = {
        "max_concurrency": str(plan.concurrency),
        "worker_processes": str(plan.worker_processes),
    }
    with servers.service(svc_dir, fake.process.url, **settings) as svc:
        idle, idle_pss = await idle_memory(svc)
        started = time.monotonic()
        stop_sampling = asyncio.Event()

        async def sample() -> None:
            while not stop_sampling.is_set():
                answered = (await fake.stats())["sent"]
                backlog = await asyncio.to_thread(inbox_backlog, svc_dir / "assistant.db")
                samples.append((time.monotonic() - started, len(posted) - answered, backlog))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_sampling.wait(), 1.0)

        sampler = asyncio.create_task(sample())
        make = webhooks(svc.port, "e2e", users)
        cpu_before = svc.cpu_seconds()
        try:
            async with sampling_pss(svc) as pss:
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
        service_cpu = cpu_share(svc, cpu_before, time.monotonic() - started)
        peak = rss_now(svc)
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
            "≤ 5 ms",
            verdict(o50 <= 0.005),
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


# ---------------------------------------------------------------------------------------------
# 3. Cost: prompt size over a long conversation


async def cost(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("3. Prompt cost")
    await fake.reset(delay=0.0)
    ids = [f"wamid.bench-conv-{k:04d}" for k in range(1, plan.conversation_length + 1)]
    workers = str(plan.worker_processes)
    with servers.service(workdir / "cost", fake.process.url, worker_processes=workers) as svc:
        conn = await Connection.open(svc.port)
        try:
            for k, message_id in enumerate(ids, start=1):
                status, _ = await conn.request(webhook_request(svc.port, message_id, sender(42)))
                if status != 200 or await fake.wait_sent(k, 15) < k:
                    raise RuntimeError(f"conversation stalled at message {k} (status {status})")
        finally:
            conn.close()
    prompts = {p["q"]: p for p in await fake.call("prompts")}
    first, last = (prompts[question(ids[n - 1])] for n in plan.probes)
    a, b = plan.probes
    flat = last["chars"] <= first["chars"] * 1.05
    section.rows += [
        Row(
            f"prompt chars, message #{a} → #{b}",
            f"{first['chars']} (#{a})",
            f"{last['chars']} (#{b})",
            ratio(last["chars"], first["chars"]),
            "flat (≤ 1.05×)",
            verdict(flat),
        ),
        Row(
            f"prompt tokens*, message #{a} → #{b}",
            f"{first['chars'] // 4} (#{a})",
            f"{last['chars'] // 4} (#{b})",
            ratio(last["chars"] // 4, first["chars"] // 4),
        ),
    ]
    growth = [
        [
            f"#{n}",
            str(prompts[question(ids[n - 1])]["chars"]),
            str(prompts[question(ids[n - 1])]["contents"]),
        ]
        for n in (1, 2, 5, 10, 11, 20, 50, 100, 200)
        if n <= len(ids)
    ]
    section.details.append((["message", "prompt chars", "contents (turns sent)"], growth))
    section.notes += [
        (
            f"{len(ids)} messages from one user, each posted after the previous answer arrived "
            "(fake Gemini answering at once). Chars = all text parts of the request, system "
            "instruction included, counted by the fake. *Tokens are a stand-in: the fake reports "
            "promptTokenCount = chars / 4 (it has no tokenizer). Defaults HISTORY_TURNS=20, "
            f"HISTORY_MAX_CHARS=16000; WORKER_PROCESSES={plan.worker_processes}."
        ),
    ]
    return section


# ---------------------------------------------------------------------------------------------
# 4. Memory with many answers in flight


async def memory(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("4. Memory")
    count = plan.in_flight
    await fake.reset(delay=0.0, hold=True)
    settings = {
        "max_concurrency": str(count),
        "gemini_timeout_seconds": "120",
        "worker_processes": str(plan.worker_processes),
    }
    try:
        with servers.service(workdir / "memory", fake.process.url, **settings) as svc:
            idle, idle_pss = await idle_memory(svc)
            async with sampling_pss(svc) as pss:
                posted = await closed_loop(
                    svc.port,
                    webhooks(svc.port, "mem", count),
                    connections=plan.connections,
                    duration=60,
                    max_requests=count,
                )
                deadline = time.monotonic() + 60
                held = 0
                while time.monotonic() < deadline:
                    held = (await fake.stats())["gemini_in_flight"]
                    if held >= count:
                        break
                    await asyncio.sleep(0.25)
                held_seconds = 60 - (deadline - time.monotonic())
                await asyncio.sleep(1.0)
                held_memory = rss_now(svc)
                held_pss = pss_now(svc)
                await fake.call("release", "POST")
                answered = await fake.wait_sent(count, 90)
            peak = rss_now(svc)
            received, duplicates = await fake.sent_times()
    finally:
        await fake.reset(delay=0.0)
    ok = posted.completed == count and len(received) == count and duplicates == 0
    section.rows += [
        Row(
            f"{count} answers in flight: peak RSS, {tree_label(peak)} (sum of VmHWM)",
            f"{mib(idle.rss_kib)} idle (sum of VmRSS)",
            mib(peak.hwm_kib),
            ratio(peak.hwm_kib, idle.rss_kib),
        ),
        Row(
            f"{count} answers in flight: peak PSS, {tree_label(peak)} (sum, sampled 1/s)",
            f"{mib(idle_pss)} idle",
            mib(pss.peak_kib),
            ratio(pss.peak_kib, idle_pss),
        ),
        Row(
            f"{count} answers in flight: all answered after release",
            f"{count} posted",
            f"{answered} sent, {len(received)} distinct, {duplicates} dup.",
            ratio(len(received), count),
            "none dropped",
            verdict(ok),
        ),
    ]
    section.notes += [
        (
            f"{count} messages from {count} users posted over {plan.connections} connections "
            f"({posted.rate:.0f}/s); the fake Gemini held every answer until all {held} were in "
            f"flight ({held_seconds:.1f} s after posting started); then summed VmRSS "
            f"{mib(held_memory.rss_kib)}, summed PSS {mib(held_pss)}; then released. "
            f"MAX_CONCURRENCY={count}, GEMINI_TIMEOUT_SECONDS=120 (so the hold does not trip the "
            f"timeout), WORKER_PROCESSES={plan.worker_processes}."
        ),
        MEMORY_NOTE.format(samples=pss.samples),
    ]
    return section


# ---------------------------------------------------------------------------------------------


SECTIONS = {
    "ack": acknowledgement,
    "e2e": end_to_end,
    "cost": cost,
    "memory": memory,
    "budget": budget,
}


async def run(plan: Plan, only: list[str]) -> list[Section]:
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        with servers.fake_upstreams(workdir, plan.gemini_delay) as process:
            async with httpx.AsyncClient() as client:
                fake = Fake(process, client)
                for name in only:
                    began = time.monotonic()
                    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                    try:
                        sections.append(await SECTIONS[name](plan, workdir, fake))
                    except Exception as exc:  # one broken section must not lose the others
                        print(f"[bench] {name} failed: {exc!r}", file=sys.stderr, flush=True)
                        failed = Section(name)
                        failed.rows.append(
                            Row(
                                "section failed",
                                "",
                                f"{type(exc).__name__}: {exc}",
                                "",
                                "",
                                "**failed**",
                            )
                        )
                        sections.append(failed)
                        await fake.reset(delay=0.0)
                    print(
                        f"[bench] {name} done in {time.monotonic() - began:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    return sections


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.Runner]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        with asyncio.Runner() as runner:
            yield runner
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        yield runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about a minute)")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of the end-to-end load (default 60, 5 with --quick)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the Markdown (default: bench/RESULTS.md after a full run of every "
        "section; --quick and --only runs are only printed)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, of {','.join(SECTIONS)}",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    if args.duration is not None and not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    plan = Plan.make(args.quick, args.duration)
    background = background_load()
    began = time.monotonic()
    with event_loop() as runner:
        sections = runner.run(run(plan, only))
    command = "python -m bench" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    markdown = render(
        sections,
        command=command,
        elapsed=time.monotonic() - began,
        quick=plan.quick,
        background=background,
    )
    print(markdown)
    complete = not plan.quick and set(only) == set(SECTIONS)
    out = args.out or (servers.ROOT / "bench" / "RESULTS.md" if complete else None)
    if out is not None:
        out.write_text(markdown, encoding="utf-8")
        print(f"[bench] written to {out}", file=sys.stderr)
    return 0
