"""Start, watch and stop the processes the benchmarks need: the service, the baseline, the fake.

Every process listens on 127.0.0.1 only, writes its output to a log file in the run's temporary
directory, and is stopped by `stop()` (SIGTERM, then SIGKILL) whatever happens in between.
CPU and memory are read from /proc for a process and all its descendants: the service's web
process (uvicorn) does its answering in WORKER_PROCESSES child processes.
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


@dataclass(frozen=True)
class TreeMemory:
    """Memory of a process tree in KiB: VmRSS and VmHWM summed over its processes.

    The sum of VmHWM is an upper bound of the tree's peak: pages shared between processes
    (the interpreter, libraries) count once per process, and each process peaks at its own time.
    """

    processes: int = 0
    rss_kib: int = 0
    hwm_kib: int = 0


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/<pid>/task/*/children (each thread's own)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                found += [int(child) for child in children.read().split()]
        except OSError:
            continue
    return found


def process_tree(root: int) -> list[int]:
    """`root` first, then all its live descendants, found recursively."""
    tree: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop(0)
        if pid not in tree:
            tree.append(pid)
            pending += _children(pid)
    return tree


def _kib(text: str, key: str) -> int:
    """The `key:   1234 kB` line of a /proc status or smaps_rollup file, in KiB (0 if absent)."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            return int(rest.split()[0])
    return 0


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

    def pids(self) -> list[int]:
        """This process and every live descendant (the service's worker processes)."""
        return process_tree(self.pid)

    def wait_tree(self, count: int, timeout: float = 15.0) -> int:
        """Wait (bounded) until the tree has `count` processes; return how many it has."""
        deadline = time.monotonic() + timeout
        while True:
            found = len(self.pids())
            if found >= count or time.monotonic() >= deadline or self.popen.poll() is not None:
                return found
            time.sleep(0.05)

    def _proc_files(self, name: str) -> list[str]:
        """/proc/<pid>/<name> of every process of the tree.

        Raises OSError if this process itself is gone; a descendant that exits meanwhile is
        left out.
        """
        texts = []
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/{name}", encoding="ascii") as file:
                    texts.append(file.read())
            except OSError:
                if pid == self.pid:
                    raise
        return texts

    def memory_kib(self) -> TreeMemory:
        """VmRSS and VmHWM in KiB from /proc, summed over the process tree."""
        statuses = self._proc_files("status")
        return TreeMemory(
            len(statuses),
            sum(_kib(s, "VmRSS") for s in statuses),
            sum(_kib(s, "VmHWM") for s in statuses),
        )

    def pss_kib(self) -> int:
        """The proportional set size in KiB summed over the process tree: pages shared by
        several processes are divided among them, so the sum is what the machine spends."""
        return sum(_kib(rollup, "Pss") for rollup in self._proc_files("smaps_rollup"))

    def cpu_seconds(self) -> float:
        """User plus system CPU time used so far by the process tree.

        Summed over the processes alive now, plus each one's exited and reaped children
        (cutime, cstime), so that a worker process restarted between two readings is not lost.
        """
        ticks = 0
        for stat in self._proc_files("stat"):
            fields = stat.rpartition(")")[2].split()
            # utime, stime, cutime, cstime: fields 14 to 17 of stat
            ticks += sum(int(value) for value in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")

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


@contextmanager
def bare_endpoint(workdir: Path) -> Iterator[Process]:
    port = free_port()
    args = ["-m", "uvicorn", "bench.bare:app", "--app-dir", str(ROOT), *UVICORN_FLAGS]
    with running("bare", [*args, "--port", str(port)], base_env(), workdir, port) as process:
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
