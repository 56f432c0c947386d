"""A business's API as the tools tests call it: a real HTTP server on 127.0.0.1, a thread of its
own, recording every request as it arrived (raw path, query, headers, body).

What it answers depends on the path's first segment: `orders` (the caller's own orders, by the
customer header), `slow` (after SLOW_SECONDS), `fail` (503), `text` (not JSON), `big` (20 KiB of
JSON), `endless` (a body that never ends), `redirect` (302 elsewhere); anything else echoes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from fake_upstreams import ServedInThread

SLOW_SECONDS = 3.0
ORDERS = {
    "16505551234": [{"number": "A-1001", "status": "out for delivery"}],
    "5511987654321": [{"number": "B-2002", "status": "delivered"}],
}


@dataclass
class Seen:
    """One request, as the server got it."""

    method: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorded:
    requests: list[Seen] = field(default_factory=list)
    endless_chunks: int = 0  # how many chunks of the endless body were produced


Send = Any
Receive = Any


def build_api(recorded: Recorded) -> Any:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        raw_path = scope["raw_path"].decode()
        seen = Seen(scope["method"], raw_path, scope["query_string"].decode(), headers, body)
        recorded.requests.append(seen)
        first = raw_path.strip("/").split("/")[0]
        if first == "orders":
            customer = headers.get("x-customer", "")
            await _json(send, 200, {"customer": customer, "orders": ORDERS.get(customer, [])})
        elif first == "slow":
            await asyncio.sleep(SLOW_SECONDS)
            await _json(send, 200, {"late": True})
        elif first == "fail":
            await _json(send, 503, {"error": "maintenance"})
        elif first == "text":
            await _send(send, 200, b"<html>not json</html>", "text/html; charset=utf-8")
        elif first == "big":
            await _json(send, 200, {"items": ["x" * 100] * 200})
        elif first == "endless":
            await _endless(send, recorded)
        elif first == "redirect":
            await _send(send, 302, b"", "text/plain", [(b"location", b"http://example.com/")])
        else:
            echo = {
                "method": seen.method,
                "path": raw_path,
                "query": seen.query,
                "body": body.decode() or None,
            }
            await _json(send, 200, echo)

    return app


async def _json(send: Send, status: int, data: Any) -> None:
    await _send(send, status, json.dumps(data).encode(), "application/json")


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type.encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _endless(send: Send, recorded: Recorded) -> None:
    """A body that never ends, a chunk at a time, until the client goes away."""
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"data": "', "more_body": True})
    try:
        while recorded.endless_chunks < 100_000:  # 100 MB: never reached by a bounded reader
            recorded.endless_chunks += 1
            await send({"type": "http.response.body", "body": b"y" * 1024, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b'"}'})
    except OSError:
        return


class BusinessApi(ServedInThread):
    """The API served in a background thread; `url` is its base address."""

    def __init__(self) -> None:
        self.recorded = Recorded()
        super().__init__(build_api(self.recorded), "the business API")

    @property
    def requests(self) -> list[Seen]:
        return self.recorded.requests
