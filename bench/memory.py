"""Section 4, memory: the service's memory with many answers in flight at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bench import servers
from bench.fake_client import Fake
from bench.load import ClosedLoopResult, closed_loop, webhooks
from bench.plan import Plan
from bench.proc import (
    MEMORY_NOTE,
    PssPeak,
    TreeMemory,
    idle_memory,
    pss_now,
    rss_now,
    sampling_pss,
    tree_label,
)
from bench.report import Row, Section, mib, mib_mb, ratio, verdict

TARGET_BYTES = 250_000_000  # issue 17: web + one worker process, 1,000 answers in flight, PSS
TARGET_WORKERS = 1


@dataclass
class InFlight:
    """One service's memory idle and with every answer held in flight, and what it sent."""

    workers: int
    idle: TreeMemory
    idle_pss: int
    held: int  # answers in flight at the fake when the hold ended
    held_seconds: float
    held_memory: TreeMemory
    held_pss: int
    pss: PssPeak
    peak: TreeMemory
    posted: ClosedLoopResult
    answered: int
    received: int
    duplicates: int


async def in_flight(plan: Plan, workdir: Path, fake: Fake, workers: int) -> InFlight:
    """A fresh service with `workers` worker processes: idle, then `plan.in_flight` answers
    held by the fake Gemini until all are in flight, then released and all sent."""
    count = plan.in_flight
    await fake.reset(delay=0.0, hold=True)
    settings = {
        "max_concurrency": str(count),
        "gemini_timeout_seconds": "120",
        "worker_processes": str(workers),
    }
    try:
        with servers.service(workdir / f"memory-{workers}", fake.process.url, **settings) as svc:
            idle, idle_pss = await idle_memory(svc.pid)
            async with sampling_pss(svc.pid) as pss:
                posted = await closed_loop(
                    svc.port,
                    webhooks(svc.port, f"mem{workers}", count),
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
                held_memory = rss_now(svc.pid)
                held_pss = pss_now(svc.pid)
                await fake.call("release", "POST")
                answered = await fake.wait_sent(count, 90)
            peak = rss_now(svc.pid)
            received, duplicates = await fake.sent_times()
    finally:
        await fake.reset(delay=0.0)
    return InFlight(
        workers,
        idle,
        idle_pss,
        held,
        held_seconds,
        held_memory,
        held_pss,
        pss,
        peak,
        posted,
        answered,
        len(received),
        duplicates,
    )


def memory_rows(run: InFlight, count: int, target: bool) -> list[Row]:
    """Peak RSS and peak PSS of one run; with `target`, the PSS row carries issue 17's."""
    label = tree_label(run.peak)
    pss_ok = run.pss.peak_kib * 1024 <= TARGET_BYTES
    return [
        Row(
            f"{count} answers in flight: peak RSS, {label} (sum of VmHWM)",
            f"{mib(run.idle.rss_kib)} idle (sum of VmRSS)",
            mib(run.peak.hwm_kib),
            ratio(run.peak.hwm_kib, run.idle.rss_kib),
        ),
        Row(
            f"{count} answers in flight: peak PSS, {label} (sum, sampled 1/s)",
            f"{mib_mb(run.idle_pss)} idle",
            mib_mb(run.pss.peak_kib),
            ratio(run.pss.peak_kib, run.idle_pss),
            f"≤ {TARGET_BYTES / 1e6:.0f} MB ({TARGET_BYTES / 2**20:.1f} MiB)" if target else "",
            verdict(pss_ok) if target else "",
        ),
    ]


def run_note(run: InFlight, count: int, plan: Plan) -> str:
    return (
        f"WORKER_PROCESSES={run.workers}: {count} messages from {count} users posted over "
        f"{plan.connections} connections ({run.posted.rate:.0f}/s); the fake Gemini held every "
        f"answer until all {run.held} were in flight ({run.held_seconds:.1f} s after posting "
        f"started); then summed VmRSS {mib(run.held_memory.rss_kib)}, summed PSS "
        f"{mib_mb(run.held_pss)}; then released: {run.answered} sent, {run.received} distinct, "
        f"{run.duplicates} duplicates."
    )


async def memory(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("4. Memory")
    count = plan.in_flight
    runs = [await in_flight(plan, workdir, fake, TARGET_WORKERS)]
    if plan.worker_processes > TARGET_WORKERS:  # one per usable CPU, as the other sections
        runs.append(await in_flight(plan, workdir, fake, plan.worker_processes))
    for run in runs:
        section.rows += memory_rows(run, count, target=run.workers == TARGET_WORKERS)
    ok = all(
        r.posted.completed == count and r.received == count and r.duplicates == 0 for r in runs
    )
    section.rows.append(
        Row(
            f"{count} answers in flight: all answered after release",
            f"{count} posted, {len(runs)} service{'s' if len(runs) > 1 else ''}",
            ", ".join(f"{r.received} distinct, {r.duplicates} dup." for r in runs),
            ratio(min(r.received for r in runs), count),
            "none dropped",
            verdict(ok),
        )
    )
    section.notes += [run_note(run, count, plan) for run in runs]
    section.notes += [
        (
            f"Target (issue 17): the web process and one worker process with {count} answers in "
            f"flight, summed PSS at most {TARGET_BYTES / 1e6:.0f} MB "
            f"({TARGET_BYTES / 2**20:.1f} MiB; MB = 10^6 bytes, MiB = 2^20 bytes). "
            f"MAX_CONCURRENCY={count}, GEMINI_TIMEOUT_SECONDS=120 (so the hold does not trip the "
            f"timeout) in every run; the run with one worker process per usable CPU "
            f"({plan.worker_processes}) is shown for comparison with the other sections, without "
            f"a target."
        ),
        MEMORY_NOTE.format(samples=" and ".join(str(r.pss.samples) for r in runs)),
    ]
    return section
