"""Load generation: signed Meta-shaped webhooks, a closed-loop and an open-loop driver, percentiles.

The client speaks HTTP/1.1 with keep-alive straight over asyncio protocols instead of through
httpx: on a 2-core machine a heavier client would be the bottleneck of the baseline and squash
the ratio. The service and the baseline are driven by the very same client code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from bench.servers import APP_SECRET, PHONE_NUMBER_ID

# ---------------------------------------------------------------------------------------------
# Payloads


def sign(body: bytes, secret: str) -> str:
    """X-Hub-Signature-256 as Meta computes it (the service's contract): HMAC-SHA256, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sender(index: int) -> str:
    """A made-up WhatsApp id (digits) for user number `index`."""
    return f"1555{index:08d}"


_TEMPLATE = json.dumps(
    {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [
                                {
                                    "profile": {"name": "Bench User"},
                                    "wa_id": "@FROM@",
                                    "user_id": "US.@FROM@",
                                }
                            ],
                            "messages": [
                                {
                                    "from": "@FROM@",
                                    "from_user_id": "US.@FROM@",
                                    "id": "@ID@",
                                    "timestamp": "@TS@",
                                    "type": "text",
                                    "text": {"body": "@TEXT@"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    },
    separators=(",", ":"),
)


def question(message_id: str) -> str:
    """The message text; the fake Gemini echoes it, so the sent reply names its message."""
    return f"Question {message_id}"


def webhook_body(message_id: str, wa_id: str) -> bytes:
    """A text-message webhook as Meta sends them with business-scoped user ids (both the
    number and `user_id`); ids and numbers are plain ASCII, so no JSON escaping is needed."""
    return (
        _TEMPLATE.replace("@FROM@", wa_id)
        .replace("@ID@", message_id)
        .replace("@TS@", str(int(time.time())))
        .replace("@TEXT@", question(message_id))
        .encode()
    )


def post_request(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def webhook_request(port: int, message_id: str, wa_id: str) -> bytes:
    """The raw bytes of one signed POST /webhook."""
    body = webhook_body(message_id, wa_id)
    return post_request(port, "/webhook", body, {"X-Hub-Signature-256": sign(body, APP_SECRET)})


def webhooks(port: int, tag: str, senders: int) -> Callable[[int], bytes]:
    """Webhook number i: message id `wamid.bench-<tag>-<i>`, from user i modulo `senders`."""
    return lambda i: webhook_request(port, f"wamid.bench-{tag}-{i:07d}", sender(i % senders))


# ---------------------------------------------------------------------------------------------
# A minimal keep-alive HTTP/1.1 client


class ConnectionClosedError(Exception):
    pass


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; responses need a Content-Length."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None
        self.closed = False

    @classmethod
    async def open(cls, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, "127.0.0.1", port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionClosedError(str(exc)))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker < 0:
            raise ValueError("response without Content-Length")
        stop = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(self._buffer) < total:
            return
        status = int(head[9:12])
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((status, body))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one complete request; returns (status, body)."""
        if self.closed or self._transport is None:
            raise ConnectionClosedError("connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


# ---------------------------------------------------------------------------------------------
# Percentiles


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of `values` (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# ---------------------------------------------------------------------------------------------
# Closed loop: a fixed number of connections, each sends its next request on the last response


@dataclass
class ClosedLoopResult:
    completed: int
    errors: int
    elapsed: float
    latencies: list[float]
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0


async def closed_loop(
    port: int,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    duration: float,
    max_requests: int,
) -> ClosedLoopResult:
    """`connections` clients in a loop for `duration` seconds or `max_requests` requests."""
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + duration
    last_done = started

    async def client() -> None:
        nonlocal errors, last_done
        conn = await Connection.open(port)
        try:
            while time.perf_counter() < deadline:
                index = next(counter)
                if index >= max_requests:
                    return
                raw = make_request(index)
                sent = time.perf_counter()
                try:
                    status, _ = await conn.request(raw)
                except ConnectionClosedError:
                    errors += 1
                    conn = await Connection.open(port)
                    continue
                last_done = time.perf_counter()
                if status == 200:
                    latencies.append(last_done - sent)
                else:
                    errors += 1
        finally:
            conn.close()

    cpu_before = time.process_time()
    tasks = [asyncio.create_task(client()) for _ in range(connections)]
    _, unfinished = await asyncio.wait(tasks, timeout=duration + 15)
    for task in unfinished:
        task.cancel()
    errors += len(unfinished)
    cpu = time.process_time() - cpu_before
    return ClosedLoopResult(len(latencies), errors, last_done - started, latencies, cpu)


# ---------------------------------------------------------------------------------------------
# Open loop: sends scheduled by the clock, whatever the responses do (no coordinated omission)


@dataclass
class OpenLoopResult:
    rate: float
    scheduled: int
    completed: int
    errors: int
    send_span: float
    latencies: list[float]  # from the scheduled send time to the response
    max_lateness: float  # how far behind its schedule the client sent its latest request
    client_cpu: float
    sent_at: dict[int, float] = field(default_factory=dict)  # wall clock of each actual send

    @property
    def achieved_rate(self) -> float:
        return (self.scheduled - 1) / self.send_span if self.send_span > 0 else 0.0


async def open_loop(
    port: int,
    make_request: Callable[[int], bytes],
    *,
    rate: float,
    duration: float,
    max_connections: int = 512,
    drain_timeout: float = 15.0,
    sent_at: dict[int, float] | None = None,
) -> OpenLoopResult:
    """Send request i at start + i/rate; latency counts from that scheduled time.

    At most `max_connections` requests are outstanding; when the server falls that far behind,
    later sends wait for a connection, which shows as client lateness and a lower achieved rate,
    and still counts in their latency (measured from the schedule). `sent_at`, if given, is
    filled while the load runs (wall-clock time of each actual send, by request index).
    """
    count = max(1, int(rate * duration))
    requests = [make_request(i) for i in range(count)]  # built before the clock starts
    idle: list[Connection] = []
    opened = 0
    slot = asyncio.Semaphore(max_connections)
    latencies: list[float] = []
    sent_at = {} if sent_at is None else sent_at
    errors = 0
    lateness = 0.0
    first_send = last_send = 0.0

    async def one(index: int, scheduled: float) -> None:
        nonlocal errors, opened, lateness, first_send, last_send
        async with slot:
            conn = idle.pop() if idle else None
            try:
                if conn is None or conn.closed:
                    conn = await Connection.open(port)
                    opened += 1
                now = time.perf_counter()
                lateness = max(lateness, now - scheduled)
                first_send = first_send or now
                last_send = now
                sent_at[index] = time.time()
                status, _ = await conn.request(requests[index])
            except (ConnectionClosedError, OSError):
                errors += 1
                return
            done = time.perf_counter()
            idle.append(conn)
            if status == 200:
                latencies.append(done - scheduled)
            else:
                errors += 1

    cpu_before = time.process_time()
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for index in range(count):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    _, unfinished = await asyncio.wait(tasks, timeout=drain_timeout)
    for task in unfinished:
        task.cancel()
    if unfinished:
        await asyncio.wait(unfinished, timeout=5)
    for conn in idle:
        conn.close()
    cpu = time.process_time() - cpu_before
    return OpenLoopResult(
        rate=rate,
        scheduled=count,
        completed=len(latencies),
        errors=errors + len(unfinished),
        send_span=last_send - first_send,
        latencies=latencies,
        max_lateness=lateness,
        client_cpu=cpu,
        sent_at=sent_at,
    )
