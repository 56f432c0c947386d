"""Worker processes: they answer beside the web process, report metrics, are supervised."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
from fake_upstreams import FakeServer
from helpers import service_env
from prometheus_client.parser import text_string_to_metric_families
from running import (
    autogroup_nice,
    children_of,
    in_a_thread,
    is_gone,
    post_text,
    start_uvicorn,
    wait_for,
)

from config import Settings
from ops.metrics import Metrics
from ops.scheduling import ask_for_slice
from service.processes import WorkerProcesses, _Child, report_line
from webhook.arrivals import WAKE, Arrival, lines_of

# ---------------------------------------------------------------------------------------------
# Pieces


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_of_worker_processes_are_added_to_the_web_process_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each worker process's report line, as it writes it, summed into the web's /metrics."""
    web, first, second = Metrics(), Metrics(), Metrics()
    web.webhooks.labels("ok").inc(3)
    first.messages.labels("default", "text", "done").inc(2)
    second.messages.labels("default", "text", "done").inc(5)
    second.messages.labels("padaria", "image", "failed").inc()
    first.gemini_latency.observe(0.3)
    second.gemini_latency.observe(3.0)
    first.in_flight.set(4)
    second.in_flight.set(6)
    processes = WorkerProcesses(cast(Settings, object()), web)
    lines = [
        report_line(first.render()),
        b"a stray print from a library\n",
        report_line(second.render()),
    ]

    async def feed() -> None:
        for index, line in enumerate(lines):
            reader = asyncio.StreamReader()
            reader.feed_data(line)
            reader.feed_eof()
            process = SimpleNamespace(stdout=reader, returncode=None)
            child = _Child(index, cast(asyncio.subprocess.Process, process), 0.0)
            processes._children[index] = child
            await processes._read_reports(child)

    printed = io.BytesIO()
    monkeypatch.setattr(sys, "stderr", SimpleNamespace(buffer=printed))
    asyncio.run(feed())
    monkeypatch.undo()
    assert printed.getvalue() == b"a stray print from a library\n"  # passed on, not parsed
    merged = samples(web.render().decode())

    assert merged[("assistant_webhooks_total", (("outcome", "ok"),))] == 3
    done = (("business", "default"), ("kind", "text"), ("outcome", "done"))
    assert merged[("assistant_messages_total", done)] == 7
    failed = (("business", "padaria"), ("kind", "image"), ("outcome", "failed"))
    assert merged[("assistant_messages_total", failed)] == 1
    assert merged[("assistant_gemini_latency_seconds_count", ())] == 2
    assert merged[("assistant_gemini_latency_seconds_sum", ())] == pytest.approx(3.3)
    assert merged[("assistant_gemini_latency_seconds_bucket", (("le", "0.5"),))] == 1
    assert merged[("assistant_answers_in_flight", ())] == 10
    assert merged[("assistant_worker_processes", ())] == 2
    # Exactly one family per name: the exposition stays valid for Prometheus.
    names = [f.name for f in text_string_to_metric_families(web.render().decode())]
    assert len(names) == len(set(names))


# ---------------------------------------------------------------------------------------------
# The real thing


def workers_reporting(url: str) -> float:
    return samples(httpx.get(f"{url}/metrics").text)[("assistant_worker_processes", ())]


@pytest.fixture
def service(fake: FakeServer, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`uvicorn main:app` with WORKER_PROCESSES=2, running until both workers are up (they
    report once they answer and follow the web process: at nice 19 on a busy machine, their
    start can take a while)."""
    env = service_env(fake.url, f"sqlite:///{tmp_path}/assistant.db", WORKER_PROCESSES="2")
    process, url = start_uvicorn(env, tmp_path)
    try:
        wait_for(lambda: len(children_of(process.pid)) == 2, 15, "two worker processes")
        wait_for(lambda: workers_reporting(url) == 2, 60, "both workers reporting")
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_processes_answer_report_metrics_and_are_restarted(
    service: tuple[subprocess.Popen[str], str], fake: FakeServer
) -> None:
    process, url = service
    for index in range(6):
        assert post_text(url, f"wamid.workers-{index}", f"1650555{index:04d}") == 200
    wait_for(lambda: len(fake.recorded.sent) >= 6, 30, "six replies")
    assert sorted(m["to"] for m in fake.recorded.sent) == [f"1650555{i:04d}" for i in range(6)]

    def answered_in_metrics() -> float:
        text = httpx.get(f"{url}/metrics").text
        return sum(
            value
            for (name, _), value in samples(text).items()
            if name == "assistant_messages_total"
        )

    # Counted by the worker processes, shown by the web process (snapshots come each second).
    wait_for(lambda: answered_in_metrics() == 6, 10, "the workers' counts in /metrics")
    wait_for(lambda: workers_reporting(url) == 2, 10, "both workers reporting")

    victim = children_of(process.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(children_of(process.pid)) == 2 and victim not in children_of(process.pid),
        20,
        "a replacement worker process",
    )
    for index in range(6, 10):
        assert post_text(url, f"wamid.workers-{index}", f"1650555{index:04d}") == 200
    wait_for(lambda: len(fake.recorded.sent) >= 10, 45, "replies after the restart")
    assert len({m["to"] for m in fake.recorded.sent}) == 10

    workers = children_of(process.pid)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "exited with code -9; restarting" in output
    assert all(is_gone(pid) for pid in workers), "worker processes outlived the web process"


def scheduling_of(pid: int) -> tuple[int, int | None, int | None]:
    """A process's nice value, its autogroup's (None without autogroup or in the root group),
    its main thread's scheduler slice in nanoseconds (None where /proc does not show it)."""
    nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    lines = Path(f"/proc/{pid}/sched").read_text().splitlines()
    slices = [int(line.split(":")[1]) for line in lines if line.startswith("se.slice")]
    return nice, autogroup_nice(pid), slices[0] if slices else None


def kernel_takes_slice_requests() -> bool:
    """Asked in a thread of its own, which ends with its request."""
    return in_a_thread(lambda: ask_for_slice(0.0005))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_step_back_and_the_web_process_asks_for_a_short_slice(
    service: tuple[subprocess.Popen[str], str],
) -> None:
    """Answering below acknowledging: each worker in the web process's session, so in its
    scheduling group, where its nice value weighs against the web process; in a process group
    of its own. The web process asks for a short scheduler slice, its workers (who inherit it)
    for the longest."""
    process, _ = service
    own_nice, own_group, default_slice = scheduling_of(os.getpid())
    web_nice, web_group, web_slice = scheduling_of(process.pid)
    assert (web_nice, web_group) == (own_nice, own_group)
    slices = kernel_takes_slice_requests()
    assert web_slice == (500_000 if slices else default_slice)
    workers = children_of(process.pid)
    assert len(workers) == 2
    for worker in workers:
        nice, group, worker_slice = scheduling_of(worker)
        assert nice == 19
        assert group == web_group  # the same autogroup, its nice value untouched
        assert os.getsid(worker) == os.getsid(process.pid)
        assert os.getpgid(worker) == worker != os.getpgid(process.pid)
        assert worker_slice == (100_000_000 if slices else default_slice)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_processes_die_with_a_killed_web_process(
    service: tuple[subprocess.Popen[str], str],
) -> None:
    """SIGKILL leaves no orphan answering on: a restarted service would answer twice."""
    process, _ = service
    workers = children_of(process.pid)
    process.kill()
    process.wait(timeout=10)
    wait_for(lambda: all(is_gone(pid) for pid in workers), 10, "the worker processes to die")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_lets_the_worker_process_finish_the_answer_in_progress(tmp_path: Path) -> None:
    """SIGTERM mid-answer: the worker process finishes it (Gemini takes 2 s, the grace
    period is 15 s) and only then exits, and the web process after it."""
    with FakeServer(gemini_delay=2.0) as fake:
        env = service_env(
            fake.url,
            f"sqlite:///{tmp_path}/assistant.db",
            WORKER_PROCESSES="1",
            SHUTDOWN_GRACE_SECONDS="15",
        )
        process, url = start_uvicorn(env, tmp_path)
        try:
            wait_for(lambda: len(children_of(process.pid)) == 1, 15, "the worker process")
            workers = children_of(process.pid)
            assert post_text(url, "wamid.grace-1", "16505550042") == 200
            wait_for(lambda: len(fake.recorded.gemini) == 1, 20, "the question to reach Gemini")
            assert fake.recorded.sent == []  # Gemini is still thinking: mid-answer
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)
    assert process.returncode in (0, -signal.SIGTERM), output[-3000:]
    assert [(m["to"], m["text"]["body"]) for m in fake.recorded.sent] == [
        ("16505550042", "*Echo:* Does it come in another color?")
    ], output[-3000:]
    assert "cut off at shutdown" not in output
    assert "did not stop in time" not in output
    assert all(is_gone(pid) for pid in workers), "the worker process outlived the web process"


def test_a_worker_process_marks_each_message_read_at_once_and_answers_the_burst_once(
    tmp_path: Path,
) -> None:
    """The web process hands each recorded message to a worker process (a line on its stdin):
    marked read at once, then one answer for the burst once the user stopped writing."""
    with FakeServer() as fake:
        env = service_env(
            fake.url,
            f"sqlite:///{tmp_path}/assistant.db",
            WORKER_PROCESSES="1",
            MESSAGE_DEBOUNCE_SECONDS="2",
            POLL_INTERVAL_SECONDS="30",
        )
        process, url = start_uvicorn(env, tmp_path)
        try:
            wait_for(
                lambda: (
                    samples(httpx.get(f"{url}/metrics").text)[("assistant_worker_processes", ())]
                    == 1
                ),
                30,
                "the worker process answering",
            )
            for index in range(3):
                assert post_text(url, f"wamid.burst-{index}", "16505550077") == 200
            wait_for(lambda: len(fake.recorded.read) == 3, 1.5, "three read receipts")
            assert fake.recorded.gemini == []  # still waiting for more
            wait_for(lambda: len(fake.recorded.sent) == 1, 15, "one answer")
            # each marked read once (the three receipts go out side by side, in any order)
            assert sorted(r["message_id"] for r in fake.recorded.read) == [
                f"wamid.burst-{index}" for index in range(3)
            ]
            assert len(fake.recorded.gemini) == 1
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_arrival_lines_carry_what_a_receipt_needs_and_nothing_else() -> None:
    arrival = Arrival("106540352242922", "wamid.HBgL=", "text", 1_700_000_000)
    assert Arrival.parse(arrival.line().rstrip(b"\n")) == arrival
    assert lines_of([arrival, Arrival("1", "wamid.bad\nid", "text", 1)]) == arrival.line()
    assert lines_of([]) == WAKE
    assert Arrival.parse(b"") is None
    assert Arrival.parse(b"w") is None
    assert Arrival.parse(b"a\tb\tc\tnot-a-number\t0") is None
    assert Arrival.parse(b"a\tb\tc\t1") is None  # a field short
    command = Arrival("1", "wamid.c", "text", 5, command=True)
    assert Arrival.parse(command.line().rstrip(b"\n")) == command


async def test_a_worker_is_told_of_an_arrival_once_the_event_loop_is_next_free() -> None:
    """After the webhook's response, which is written in the same turn of the event loop as
    `arrived` is called: the pipe write and the worker it wakes do not hold it up. What
    arrived in the same turn goes in one write."""
    events: list[object] = []
    stdin = SimpleNamespace(write=lambda line: events.append(line), is_closing=lambda: False)
    process = SimpleNamespace(stdin=stdin, returncode=None)
    processes = WorkerProcesses(cast(Settings, object()), Metrics())
    processes._children[0] = _Child(0, cast(asyncio.subprocess.Process, process), 0.0)
    arrival = Arrival("106540352242922", "wamid.told", "text", 1_700_000_000)
    other = Arrival("106540352242922", "wamid.also-told", "text", 1_700_000_001)

    processes.arrived([arrival])
    processes.arrived([other])
    events.append("the responses")
    await asyncio.sleep(0)
    assert events == ["the responses", arrival.line() + other.line()]
    processes.arrived([arrival])
    await asyncio.sleep(0)
    assert events[-1] == arrival.line()
