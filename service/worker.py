"""The answering worker as a program: `python -m service.worker` answers until it is stopped.

Run it beside a web process with EXTERNAL_WORKERS=true under any supervisor (a Render
background worker, systemd, a second container); it reads its settings from the environment
and `.env` like the web process and finds work by polling the database. The web process starts
its WORKER_PROCESSES children as `python -m service.worker --supervised` (see processes.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import IO, TYPE_CHECKING

from config import Settings
from ops.memory import settle_garbage_collector
from ops.metrics import Metrics
from ops.scheduling import step_back
from service.startup_settings import load_settings
from webhook.arrivals import Arrival

if TYPE_CHECKING:
    from answering.dispatcher import Dispatcher

log = logging.getLogger("service.worker")

REPORT_SECONDS = 1.0
WORKER_NICENESS = 19


async def _follow_parent(answering: Dispatcher) -> None:
    """Wake-ups from the web process on stdin, one line each (`webhook.arrivals`); end of
    file: it died, so this process dies."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pending = b""
    while True:
        data = await reader.read(4096)
        if not data:
            log.error("the web process is gone; this worker process stops now")
            os._exit(1)
        *lines, pending = (pending + data).split(b"\n")
        arrivals = [a for a in map(Arrival.parse, lines) if a is not None]
        if arrivals:
            answering.arrived(arrivals)
        if len(arrivals) < len(lines):
            answering.notify()


async def _report(metrics: Metrics, out: IO[bytes]) -> None:
    from service.processes import report_line

    while True:
        out.write(report_line(metrics.render()))
        out.flush()
        await asyncio.sleep(REPORT_SECONDS)


async def serve(settings: Settings, *, supervised: bool) -> None:
    """Answer the inbox until SIGTERM (or SIGINT when alone), then finish in time and exit."""
    from service.answering import running_answering
    from service.processes import report_line
    from storage.store import Store

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if not supervised:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    metrics = Metrics()
    # Supervised: the web process migrated (or checked) the database and took back what its
    # last run held before starting this one. Alone: this process does both for itself.
    store = await Store.open(
        settings.database_url, migrate=None if supervised else settings.auto_migrate
    )
    background: list[asyncio.Task[None]] = []
    try:
        async with running_answering(settings, store, metrics, resume=not supervised) as answering:
            settle_garbage_collector()
            if supervised:
                background.append(asyncio.create_task(_follow_parent(answering)))
                background.append(asyncio.create_task(_report(metrics, sys.stdout.buffer)))
            else:
                log.info("answering; polling every %.1fs", settings.poll_interval_seconds)
            await stop.wait()
            for task in background:
                task.cancel()
        if supervised:  # the dispatcher has stopped: one last snapshot with everything counted
            sys.stdout.buffer.write(report_line(metrics.render()))
            sys.stdout.buffer.flush()
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.worker", description=__doc__)
    parser.add_argument(
        "--supervised",
        action="store_true",
        help="started by the web process: wake-ups on stdin, metrics on stdout, dies with it",
    )
    supervised = parser.parse_args(argv).supervised
    if supervised:
        # A process group of its own: a SIGTERM or Ctrl-C to the web process's group (a
        # terminal, `timeout`, a supervisor) reaches the web process alone, which then stops
        # its children itself; were they stopped too, they would look as if they had died.
        # The session stays the web process's (service/processes.py).
        os.setpgid(0, 0)
        # Below the web process: an answer waits seconds for Gemini anyway, a webhook must not.
        step_back(WORKER_NICENESS)
        # The web process decides when this one stops, should a Ctrl-C reach it all the same;
        # and a group in the background of a terminal set to `stty tostop` is stopped when it
        # writes there, unless it ignores SIGTTOU: its logs go to the web process's stderr.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    settings = load_settings()  # logging set up by them, too
    try:
        import uvloop

        uvloop.run(serve(settings, supervised=supervised))
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(serve(settings, supervised=supervised))


if __name__ == "__main__":
    main()
