"""Section 1, webhook acknowledgement: the service beside a bare FastAPI endpoint and pywa.

(a) Closed loop: keep-alive connections posting signed webhooks as fast as they are answered.
(b) Open loop: sends scheduled by the clock at several rates, while the service's worker
processes answer every message through a fake Gemini that takes its time.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

from bench import servers
from bench.fake_client import Fake
from bench.load import OpenLoopResult, closed_loop, open_loop, percentile, webhooks
from bench.plan import Plan
from bench.proc import cpu_seconds, cpu_share
from bench.report import Row, Section, ms, ratio, verdict

PYWA = ("pywa", "pywa_async")  # the baselines beside which the ack's targets are set
TARGET_RATE = 200  # the open-loop rate whose p99 has a target (pywa's baselines run it alone)


async def acknowledgement(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("1. Webhook ack")
    settings = plan.service_settings()
    cap = 200_000  # hard bound on requests per closed-loop run

    # a) closed loop
    sat: dict[str, tuple[float, float, float, int, str, str]] = {}
    for name in (*servers.BASELINES, "ours"):
        await fake.reset(delay=plan.gemini_delay)
        with contextlib.ExitStack() as stack:
            if name in servers.BASELINES:
                proc = stack.enter_context(servers.baseline(workdir, name))
            else:
                proc = stack.enter_context(
                    servers.service(workdir / "ack-closed", fake.process.url, **settings)
                )
            cpu_before = cpu_seconds(proc.pid)
            result = await closed_loop(
                proc.port,
                webhooks(proc.port, f"sat-{name}", plan.senders),
                connections=plan.connections,
                duration=plan.saturation_seconds,
                max_requests=cap,
            )
            server_cpu = cpu_share(proc.pid, cpu_before, result.elapsed)
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
        *(
            Row(
                f"closed loop, {c} conns: throughput beside {name}",
                f"{sat[name][0]:.0f} req/s ({name})",
                f"{o_rate:.0f} req/s",
                ratio(o_rate, sat[name][0]),
                "≥ 1.5× pywa",
                verdict(o_rate >= 1.5 * sat[name][0]),
            )
            for name in PYWA
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
    for name in servers.BASELINES:
        with servers.baseline(workdir, name) as base:
            for rate in plan.open_rates if name == "bare" else (TARGET_RATE,):
                base_result = await open_loop(
                    base.port,
                    webhooks(base.port, f"open{rate}-{name}", plan.senders),
                    rate=rate,
                    duration=plan.open_seconds,
                )
                results[name, rate] = _open_row(rows, name, base_result)
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
        target = rate == TARGET_RATE
        section.rows += [
            Row(f"open loop {rate}/s: p50", ms(b50), ms(o50), ratio(o50, b50)),
            Row(
                f"open loop {rate}/s: p99",
                ms(b99),
                ms(o99),
                ratio(o99, b99),
                "≤ 2× bare" if target else "",
                verdict(o99 <= 2 * b99) if target else "",
            ),
            *(
                Row(
                    f"open loop {rate}/s: p99 beside {name}",
                    f"{ms(results[name, rate][1])} ({name})",
                    ms(o99),
                    ratio(o99, results[name, rate][1]),
                )
                for name in PYWA
                if target
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
            "run. Baselines, same flags (`--host 127.0.0.1 --log-level warning`): "
            "`uvicorn bench.bare:app`, a FastAPI endpoint that reads the body; pywa 4.5.0's "
            "FastAPI webhook, synchronous (`bench.pywa_app:app`, 'pywa') and asynchronous "
            "(`bench.pywa_app:async_app`, 'pywa_async'): signature checked, updates parsed and "
            "handed to a handler that does nothing, nothing stored. Per-user rate "
            "limits are off in every service the bench starts (RATE_LIMIT_PER_MINUTE=0, "
            "RATE_LIMIT_PER_DAY=0): the loads send more per user than a person types."
        ),
        (
            "Each signed webhook has a unique message id; senders cycle over "
            f"{plan.senders} users. Server and client CPU are shares of one core over the run; "
            "ours counts the web process and its worker processes together."
        ),
    ]
    return section


def _open_row(
    rows: list[list[str]], name: str, result: OpenLoopResult
) -> tuple[float, float, float]:
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
