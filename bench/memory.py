"""Section 4, memory: the service's memory with many answers in flight at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench import servers
from bench.fake_client import Fake
from bench.load import closed_loop, webhooks
from bench.plan import Plan
from bench.proc import MEMORY_NOTE, idle_memory, pss_now, rss_now, sampling_pss, tree_label
from bench.report import Row, Section, mib, ratio, verdict


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
            idle, idle_pss = await idle_memory(svc.pid)
            async with sampling_pss(svc.pid) as pss:
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
                held_memory = rss_now(svc.pid)
                held_pss = pss_now(svc.pid)
                await fake.call("release", "POST")
                answered = await fake.wait_sent(count, 90)
            peak = rss_now(svc.pid)
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
