"""Start, watch and stop the processes the benchmarks need: the service, the baseline, the fake.

Every process listens on 127.0.0.1 only, writes its output to a log file in the run's temporary
directory, and is stopped by `stop()` (SIGTERM, then SIGKILL) whatever happens in between.
The service's web process (uvicorn) does its answering in WORKER_PROCESSES child processes:
`service()` waits for them; `bench.proc` measures the whole tree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.proc import process_tree

ROOT = Path(__file__).resolve().parent.parent

# Settings of the service under test: made-up values, only ever sent to the local fake.
APP_SECRET = "bench-app-secret-2b7e"  # noqa: S105
VERIFY_TOKEN = "bench-verify-token-c4d1"  # noqa: S105
WHATSAPP_TOKEN = "bench-whatsapp-token-9a0f"  # noqa: S105
GEMINI_API_KEY = "bench-gemini-key-6e3b"
PHONE_NUMBER_ID = "106540352242922"

# The same flags for the service and the baseline: only the app differs.
UVICORN_FLAGS = ["--host", "127.0.0.1", "--log-level", "warning"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A started server process, its address and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_tree(self, count: int, timeout: float = 15.0) -> int:
        """Wait (bounded) until the tree has `count` processes; return how many it has."""
        deadline = time.monotonic() + timeout
        while True:
            found = len(process_tree(self.pid))
            if found >= count or time.monotonic() >= deadline or self.popen.poll() is not None:
                return found
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy in {timeout:.0f} s")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it does not end in `timeout` seconds."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


@contextmanager
def running(
    name: str, args: list[str], env: dict[str, str], cwd: Path, port: int
) -> Iterator[Process]:
    """Start `python <args>` in `cwd`, wait for GET /health, and always stop it afterwards."""
    log_path = cwd / f"{name}.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, *args], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    process = Process(name, popen, port, log_path)
    try:
        process.wait_healthy()
        yield process
    except BaseException:
        process.stop()
        tail = process.log_tail(40)
        if tail:  # the log goes with the temporary directory: show it while it is there
            print(f"--- last lines of the {name} log ---\n{tail}", file=sys.stderr)
        raise
    finally:
        process.stop()
        keep = os.environ.get("BENCH_KEEP_LOGS")
        if keep:  # for a look after the run: the temporary directory goes with it
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_path, Path(keep) / f"{cwd.name}-{name}.log")


def base_env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    if "LANG" in os.environ:
        env["LANG"] = os.environ["LANG"]
    return env


@contextmanager
def fake_upstreams(workdir: Path, gemini_delay: float) -> Iterator[Process]:
    port = free_port()
    args = ["-m", "bench.fakes", "--port", str(port), "--gemini-delay", str(gemini_delay)]
    env = base_env() | {"PYTHONPATH": str(ROOT)}
    with running("fake-upstreams", args, env, workdir, port) as process:
        yield process


BASELINES = {
    "bare": "bench.bare:app",
    "pywa": "bench.pywa_app:app",
    "pywa_async": "bench.pywa_app:async_app",
}


@contextmanager
def baseline(workdir: Path, name: str) -> Iterator[Process]:
    """A baseline of section 1 (`BASELINES`) under `uvicorn`, with the service's flags."""
    port = free_port()
    args = ["-m", "uvicorn", BASELINES[name], "--app-dir", str(ROOT), *UVICORN_FLAGS]
    env = base_env() | {"PYTHONPATH": str(ROOT)}
    with running(name, [*args, "--port", str(port)], env, workdir, port) as process:
        yield process


@contextmanager
def service(workdir: Path, fake_url: str, **settings: str) -> Iterator[Process]:
    """`uvicorn main:app` in a fresh directory of its own (no `.env`), against the fake.

    Yields once /health answers and the web process has started its WORKER_PROCESSES children.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    env = base_env() | {
        "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET,
        "PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "GEMINI_API_KEY": GEMINI_API_KEY,
        "GRAPH_API_BASE_URL": fake_url,
        "GEMINI_BASE_URL": fake_url,
        "DATABASE_URL": f"sqlite:///{workdir}/assistant.db",
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "3",
        # Per-user rate limits off: the loads send more per user than a person would type.
        "RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_PER_DAY": "0",
        # Each message answered alone: every user writes again every few seconds for the whole
        # load, one never-ending burst that MESSAGE_DEBOUNCE_SECONDS would answer a few times
        # in all, while these sections count each message's answer (section 5 measures the
        # burst path's database work beside the single message's).
        "MESSAGE_DEBOUNCE_SECONDS": "0",
    }
    env.update({key.upper(): value for key, value in settings.items()})
    port = free_port()
    args = ["-m", "uvicorn", "main:app", "--app-dir", str(ROOT), *UVICORN_FLAGS]
    with running("service", [*args, "--port", str(port)], env, workdir, port) as process:
        # /health answers before every worker process runs: wait for them, so that no figure
        # is taken from a partial tree (nor a worker's start-up counted in a run's CPU).
        expected = 1 + int(env.get("WORKER_PROCESSES", "1"))
        found = process.wait_tree(expected)
        if found < expected:
            print(
                f"[bench] service: {found} of {expected} processes after 15 s, going on",
                file=sys.stderr,
                flush=True,
            )
        if expected > 1 and not workers_reporting(port, expected - 1, timeout=30):
            print(
                "[bench] service: worker processes not all reporting after 30 s, going on",
                file=sys.stderr,
            )
        yield process


def workers_reporting(port: int, count: int, timeout: float) -> bool:
    """Wait until /metrics says `count` worker processes are up (imports done, answering)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            for line in text.splitlines():
                if (
                    line.startswith("assistant_worker_processes ")
                    and float(line.split()[1]) >= count
                ):
                    return True
        time.sleep(0.1)
    return False
