"""Worker processes: answering runs beside the web process, which only records and acknowledges.

Answering a message costs milliseconds of CPU (mostly the Gemini SDK building its request);
acknowledging a webhook must not wait behind that, or Meta sees slow acks and redelivers. So
the web process (uvicorn) records each webhook, answers 200, and wakes one of WORKER_PROCESSES
child processes through its stdin. Each child runs a Worker (worker.py) with its own database
connections and HTTP clients and sends its metrics back on its stdout once a second.

A worker process dies with the web process (it must not answer on unsupervised); one that dies
alone is restarted, and what it held is taken over when its leases run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import pickle
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from prometheus_client.metrics_core import Metric

from config import Settings
from metrics import Metrics

log = logging.getLogger(__name__)

WAKE = b"w"  # parent -> child: new messages were recorded
QUIT = b"q"  # parent -> child: stop claiming, finish what is in flight, exit
SNAPSHOT_SECONDS = 1.0
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
PARENT_PID_ENV = "ASSISTANT_WEB_PID"
_HEADER = struct.Struct("!I")
_PR_SET_PDEATHSIG = 1
WORKER_NICENESS = 19
_ENTRY_POINT = str(Path(__file__).resolve())  # this file, run as a script in each child


# Collect young objects every 10,000 allocations rather than 700: handling a webhook or an
# answer allocates hundreds, and each pass costs more than the memory it frees sooner.
GC_THRESHOLDS = (10_000, 20, 20)


def settle_garbage_collector() -> None:
    """Keep what start-up loaded (about 100,000 objects) out of the garbage collector's passes.

    It lives as long as the process, and full passes over it paused webhooks and answers:
    with this, a closed loop of webhooks went from about 1,100 to 1,400-1,700 per second.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def frame(data: bytes) -> bytes:
    """A length-prefixed message on a pipe."""
    return _HEADER.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return await reader.readexactly(size)


# ---------------------------------------------------------------------------------------------
# The web process's side


@dataclass
class _Child:
    index: int
    process: asyncio.subprocess.Process
    started: float
    snapshot: list[Metric] = field(default_factory=list)
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
        self._stopping = False
        metrics.add_source(self._snapshots)
        metrics.worker_processes.set_function(self._reporting)

    def _reporting(self) -> int:
        """Worker processes alive that have reported (they report once they answer)."""
        return sum(1 for child in self._children.values() if child.alive and child.snapshot)

    async def start(self) -> None:
        for index in range(self._settings.worker_processes):
            self._children[index] = await self._spawn(index)
            self._supervisors.append(
                asyncio.create_task(self._supervise(index), name=f"worker-process-{index}")
            )
        log.info("answering in %d worker process(es)", len(self._children))

    def notify(self) -> None:
        """Wake one worker process, in turn; the others look at their next poll anyway."""
        live = [c for c in self._children.values() if c.alive and c.process.stdin is not None]
        if not live:
            return
        child = live[self._turn % len(live)]
        self._turn += 1
        stdin = child.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(WAKE)

    async def stop(self, grace_seconds: float) -> None:
        """Ask every worker process to finish what it holds within the grace period."""
        self._stopping = True
        for supervisor in self._supervisors:
            supervisor.cancel()
        children = [c for c in self._children.values() if c.alive]
        for child in children:
            if child.process.stdin is not None and not child.process.stdin.is_closing():
                child.process.stdin.write(QUIT)
        waits = [asyncio.create_task(c.process.wait()) for c in children]
        if waits:
            _, late = await asyncio.wait(waits, timeout=grace_seconds + 10)
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
                child.reader.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)

    async def _spawn(self, index: int) -> _Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            _ENTRY_POINT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
        )
        assert process.stdin is not None
        # Settings go through the pipe, not the environment: they may have been passed in
        # rather than read from it, and the pipe is seen by nothing else.
        process.stdin.write(frame(pickle.dumps(self._settings)))
        child = _Child(index, process, time.monotonic())
        child.reader = asyncio.create_task(self._read_snapshots(child))
        return child

    async def _read_snapshots(self, child: _Child) -> None:
        stdout = child.process.stdout
        assert stdout is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                # Pickle is safe here: the other end is this process's own child.
                child.snapshot = pickle.loads(await read_frame(stdout))  # noqa: S301

    def _snapshots(self) -> Iterator[Metric]:
        for child in list(self._children.values()):
            yield from child.snapshot

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
            log.error(
                "worker process %d exited with code %s; restarting in %.0fs", index, code, delay
            )
            await asyncio.sleep(delay)
            try:
                self._children[index] = await self._spawn(index)
            except OSError:
                log.exception("could not restart worker process %d", index)


# ---------------------------------------------------------------------------------------------
# The worker process's side


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the web process dies, however it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = os.environ.get(PARENT_PID_ENV, "")
    if parent.isdigit() and os.getppid() != int(parent):  # it died before the request
        os._exit(1)


def _read_settings(fd: int) -> Settings:
    """The first frame on stdin, read unbuffered so that no later byte is swallowed."""

    def read_exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                raise SystemExit(1)  # the web process went away before sending settings
            data += chunk
        return data

    (size,) = _HEADER.unpack(read_exactly(_HEADER.size))
    settings = pickle.loads(read_exactly(size))  # noqa: S301 (sent by our own parent)
    assert isinstance(settings, Settings)
    return settings


async def _follow_parent(stdin: IO[bytes], wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Wake-ups and the quit request from the web process; end of file: it died, so die."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    while True:
        data = await reader.read(4096)
        if not data:
            log.error("the web process is gone; this worker process stops now")
            os._exit(1)
        if QUIT in data:
            stop.set()
            return
        wake()


async def _report(metrics: Metrics, channel: asyncio.WriteTransport) -> None:
    while True:
        channel.write(frame(pickle.dumps(metrics.snapshot())))
        await asyncio.sleep(SNAPSHOT_SECONDS)


async def serve(settings: Settings, stdin: IO[bytes], channel: IO[bytes]) -> None:
    """Answer the inbox until the web process says quit (or SIGTERM), then finish in time."""
    from schema import create_engine
    from store import Store
    from worker import running_worker

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    metrics = Metrics()
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, channel)
    # No schema check: the web process migrated or checked the database before starting us.
    store = Store(create_engine(settings.database_url))
    try:
        async with running_worker(settings, store, metrics, resume=False) as worker:
            settle_garbage_collector()
            follow = asyncio.create_task(_follow_parent(stdin, worker.notify, stop))
            report = asyncio.create_task(_report(metrics, transport))
            await stop.wait()
            follow.cancel()
            report.cancel()
        # The worker has stopped: one last snapshot with everything it counted.
        transport.write(frame(pickle.dumps(metrics.snapshot())))
    finally:
        await store.close()
        transport.close()


def main() -> None:
    _die_with_parent()
    # Below the web process: an answer waits seconds for Gemini anyway, a webhook must not.
    os.nice(WORKER_NICENESS)
    # Ctrl-C reaches the whole process group; the web process decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = _read_settings(0)
    # Metrics go back on the original stdout; anything a library prints goes to stderr.
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from logs import configure_logging

    configure_logging(settings)
    stdin = os.fdopen(0, "rb", buffering=0)
    try:
        import uvloop

        uvloop.run(serve(settings, stdin, channel))
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(serve(settings, stdin, channel))


if __name__ == "__main__":
    main()
