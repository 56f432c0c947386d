"""A throwaway PostgreSQL server for the tests: initdb in a temp directory on a free port."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from fake_upstreams import free_port


def find_postgres_bin() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`: on PATH, else the newest Debian install."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


class PostgresServer:
    """Starts its own cluster; PostgreSQL refuses to run as root, so root runs it as `postgres`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
        self.data = self.root / "data"
        self.status = self.root / "status"  # written by start_in_background
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=self._user,
            cwd=self.root,
            timeout=120,
        )

    def start(self) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._user = "postgres"
        # A throwaway cluster: nothing is flushed to disk, initdb's files included.
        initdb = ["-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        self._run("initdb", *initdb, "--no-sync")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


READY = "ready"


def start_in_background(server: PostgresServer) -> threading.Thread:
    """Start `server` in a thread; its `status` file then says READY, or why it failed."""

    def start() -> None:
        try:
            server.start()
        except (subprocess.SubprocessError, OSError) as exc:
            output = getattr(exc, "stderr", b"") or b""
            outcome = f"{exc!r}\n{output.decode(errors='replace')}"
        else:
            outcome = READY
        written = server.status.with_suffix(".tmp")
        written.write_text(outcome, encoding="utf-8")
        written.replace(server.status)  # whole, for whoever reads it

    thread = threading.Thread(target=start, name="postgres-start", daemon=True)
    thread.start()
    return thread


def wait_until_started(status: Path, timeout: float = 300.0) -> None:
    """Return once the server `start_in_background` starts is up; raise if it could not start."""
    deadline = time.monotonic() + timeout
    while not status.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the tests' PostgreSQL server did not start in {timeout:.0f} s")
        time.sleep(0.05)
    outcome = status.read_text(encoding="utf-8")
    if outcome != READY:
        raise RuntimeError(f"the tests' PostgreSQL server could not start: {outcome}")
