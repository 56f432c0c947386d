"""Worker processes seen from the web process: started, woken, supervised, counted, stopped.

Answering a message costs milliseconds of CPU; acknowledging a webhook must not wait behind
that, or Meta sees slow acks and redelivers. So the web process (uvicorn) records each webhook,
answers 200, and wakes one of WORKER_PROCESSES children, each running the same program an
operator can run alone: `python -m service.worker --supervised`.

The pipes are the whole protocol. The child's stdin carries wake-ups, one line each: a message just
recorded (`webhook.arrivals`), or an empty line to look for work; its end
tells the child that the web process is gone, however it died. The child's stdout carries a
metrics snapshot once a second, one JSON line each. SIGTERM asks a child to finish the answers
it holds within SHUTDOWN_GRACE_SECONDS and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from ops.metrics import Metrics
from webhook.arrivals import WAKE, Arrival, lines_of

log = logging.getLogger(__name__)

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_MARGIN_SECONDS = 10.0
# How a worker process ends when someone else sent it SIGTERM or SIGINT: no crash.
STOPPED_ON_REQUEST = frozenset({0, -signal.SIGTERM, -signal.SIGINT})
ROOT = Path(__file__).resolve().parent.parent  # where `service.worker` is importable from


def child_environment(settings: Settings) -> dict[str, str]:
    """The web process's environment plus its effective settings, which the child reads back."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        **settings.as_environment(),
        "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""),
    }


@dataclass
class _Child:
    index: int
    process: asyncio.subprocess.Process
    started: float
    report: str = ""  # the latest metrics snapshot, in Prometheus's text format
    reader: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class WorkerProcesses:
    """Starts, wakes, supervises and stops the worker processes of one web process."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._children: dict[int, _Child] = {}
        self._supervisors: list[asyncio.Task[None]] = []
        self._turn = 0
        self._arrivals: list[bytes] = []  # lines for the next worker to be told (`arrived`)
        self._stopping = False
        metrics.add_source(self._reports)
        metrics.worker_processes.set_function(self._reporting)

    def _reporting(self) -> int:
        """Worker processes alive that have reported (they report once they answer)."""
        return sum(1 for child in self._children.values() if child.alive and child.report)

    async def start(self) -> None:
        for index in range(self._settings.worker_processes):
            self._children[index] = await self._spawn(index)
            self._supervisors.append(
                asyncio.create_task(self._supervise(index), name=f"worker-process-{index}")
            )
        log.info("answering in %d worker process(es)", len(self._children))

    def arrived(self, arrivals: Sequence[Arrival]) -> None:
        """Tell one worker process, in turn, what was just recorded (it marks the messages
        read and looks for work); the others look at their next poll anyway.

        Told once the event loop is next free: after the webhook's 200 has gone out, which
        the write into the pipe (and the worker it wakes) would otherwise hold up. The
        arrivals of every webhook answered in the meantime go in that one write."""
        if not self._arrivals:
            asyncio.get_running_loop().call_soon(self._tell_arrivals)
        self._arrivals.append(lines_of(arrivals))

    def _tell_arrivals(self) -> None:
        lines, self._arrivals = b"".join(self._arrivals), []
        self._tell(lines)

    def notify(self) -> None:
        """Wake one worker process, in turn, to look for work."""
        self._tell(WAKE)

    def _tell(self, notice: bytes) -> None:
        live = [c for c in self._children.values() if c.alive and c.process.stdin is not None]
        if not live:
            return
        child = live[self._turn % len(live)]
        self._turn += 1
        stdin = child.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(notice)

    async def stop(self, grace_seconds: float) -> None:
        """Ask every worker process to finish what it holds within the grace period."""
        self._stopping = True
        for supervisor in self._supervisors:
            supervisor.cancel()
        children = [c for c in self._children.values() if c.alive]
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
        waits = [asyncio.create_task(c.process.wait()) for c in children]
        if waits:
            _, late = await asyncio.wait(waits, timeout=grace_seconds + STOP_MARGIN_SECONDS)
            if late:
                log.warning("%d worker process(es) did not stop in time: killed", len(late))
                for child in children:
                    if child.alive:
                        child.process.kill()
                await asyncio.wait(waits, timeout=5)
        for child in self._children.values():
            if child.process.stdin is not None:
                child.process.stdin.close()
            if child.reader is not None:
                await asyncio.wait([child.reader], timeout=1)
                child.reader.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)

    async def _spawn(self, index: int) -> _Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.worker",
            "--supervised",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=child_environment(self._settings),
            # In the web process's session, which is what Linux's autogroup weighs nice values
            # within (ops/scheduling.py); the child moves to a process group of its own at once.
        )
        child = _Child(index, process, time.monotonic())
        child.reader = asyncio.create_task(self._read_reports(child))
        return child

    async def _read_reports(self, child: _Child) -> None:
        """Keep the latest snapshot; anything else a library printed goes on to stderr."""
        stdout = child.process.stdout
        assert stdout is not None
        with contextlib.suppress(ConnectionError, ValueError):
            while line := await stdout.readline():
                report = _report_in(line)
                if report is None:
                    sys.stderr.buffer.write(line)
                else:
                    child.report = report

    def _reports(self) -> Iterator[Metric]:
        """The children's latest samples; their `_created` series are left to this process's."""
        for child in list(self._children.values()):
            if child.report:
                for family in text_string_to_metric_families(child.report):
                    if not family.name.endswith("_created"):
                        yield family

    async def _supervise(self, index: int) -> None:
        """Restart a worker process that died on its own, backing off if it keeps dying."""
        failures = 0
        while not self._stopping:
            child = self._children[index]
            code = await child.process.wait()
            if self._stopping:
                return
            failures = 0 if time.monotonic() - child.started > 60 else failures + 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            log.log(
                logging.WARNING if code in STOPPED_ON_REQUEST else logging.ERROR,
                "worker process %d exited with code %s%s; restarting in %.0fs",
                index,
                code,
                " (stopped from outside this service)" if code in STOPPED_ON_REQUEST else "",
                delay,
            )
            await asyncio.sleep(delay)
            try:
                self._children[index] = await self._spawn(index)
            except OSError:
                log.exception("could not restart worker process %d", index)


def report_line(exposition: bytes) -> bytes:
    """One metrics snapshot as the child writes it: a JSON object on one line."""
    return json.dumps({"metrics": exposition.decode()}).encode() + b"\n"


def _report_in(line: bytes) -> str | None:
    """The snapshot a line carries, or None for a line that is not one."""
    if not line.startswith(b'{"metrics"'):
        return None
    try:
        report = json.loads(line)["metrics"]
    except (ValueError, KeyError, TypeError):
        return None
    return report if isinstance(report, str) else None
