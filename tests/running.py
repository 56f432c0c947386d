"""Real service processes and app instances for the tests: start them, wait for them, post."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from fake_upstreams import FakeServer, free_port
from helpers import APP_SECRET, ROOT, Harness, load_payload, make_settings, running_app, service_env
from respx_upstreams import FakeUpstreams

from webhook.signature import sign

T = TypeVar("T")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition until it holds; fail with `what` when it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def is_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def start_uvicorn(
    env: dict[str, str], cwd: Path, *, new_session: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """`uvicorn main:app` on a free port, its output captured; returns once /health answers.
    `new_session`: in a process group of its own, which a test may signal as a whole."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(ROOT)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,  # no developer `.env` is read
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
    )
    try:
        wait_for(lambda: is_healthy(url) or process.poll() is not None, 30, "the service")
    except BaseException:
        process.kill()
        process.communicate(timeout=30)
        raise
    if process.poll() is not None:
        output, _ = process.communicate(timeout=30)
        raise AssertionError(f"the service exited at start-up:\n{output}")
    return process, url


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def in_a_thread(job: Callable[[], T]) -> T:
    """`job()` in a thread of its own: what it asks of the scheduler ends with it."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(job()))
    thread.start()
    thread.join()
    return result[0]


def autogroup_nice(pid: int | str = "self") -> int | None:
    """A process's autogroup nice value; None without autogroup, or in the kernel's root group
    (a session that never had an autogroup of its own), where /proc shows nothing."""
    group = Path(f"/proc/{pid}/autogroup")
    fields = group.read_text().split() if group.exists() else []
    return int(fields[-1]) if fields else None


def is_gone(pid: int) -> bool:
    """Exited (a zombie not reaped yet counts: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def post_text(url: str, message_id: str, wa_id: str) -> int:
    payload = load_payload("text")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = message_id
    message["from"] = wa_id
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = wa_id
    body = json.dumps(payload).encode()
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
    return httpx.post(f"{url}/webhook", content=body, headers=headers).status_code


@asynccontextmanager
async def instances(
    database_url: str, fakes: FakeUpstreams, count: int
) -> AsyncIterator[list[Harness]]:
    """`count` app instances sharing one database, as behind a load balancer."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(running_app(make_settings(database_url), fakes))
            for _ in range(count)
        ]


async def settle_everywhere(apps: list[Harness]) -> None:
    for app in apps:
        await app.settle_all()
    for app in apps:
        await app.settle()


def fast_takeover_env(fake: FakeServer, database_url: str) -> dict[str, str]:
    """Short leases and polls, so a killed process's messages are taken over quickly."""
    return service_env(
        fake.url,
        database_url,
        LEASE_SECONDS="1.5",
        POLL_INTERVAL_SECONDS="0.2",
        LOG_LEVEL="WARNING",
    )


def start_service(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(ROOT), "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


async def wait_for_async(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, "the service exited at start-up"
            try:
                if (await client.get(f"{url}/health", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the service did not become healthy")
