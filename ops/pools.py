"""Connection pools for the upstream HTTP clients: many small pools instead of one large one.

httpcore 1.x scans every connection of a pool, asking each whether it has expired, on every
request and every response, so a request's CPU cost grows with the pool's size (bench/RESULTS.md,
section 5, and its notes). Gemini answers take seconds, so hundreds of requests are in flight
at once; Graph calls are quick but many at a time under load.

Upstream: encode/httpcore#1035 (one pass over the pool instead of one per queued request) and
encode/httpcore#928 (socket polling only at intervals), both open when this was written. This
module can go once an httpcore release carries such a fix and `make bench` shows one pool of
MAX_CONCURRENCY connections no dearer per request than these shards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

SHARD_CONNECTIONS = 4


class _Released(httpx.AsyncByteStream):
    """A response body that calls `release` once, when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ShardedTransport(httpx.AsyncBaseTransport):
    """`max_connections` spread over pools of `SHARD_CONNECTIONS`, filled first to last.

    A request goes to the first pool with a free connection, so light traffic keeps reusing
    the few connections of the first pools (no new TLS handshake per request), and a pool is
    only ever asked to queue when every pool is full. A request holds its pool's slot until
    its response body is closed, as it holds the connection.
    """

    def __init__(
        self,
        max_connections: int,
        *,
        shard_connections: int = SHARD_CONNECTIONS,
        **options: Any,
    ) -> None:
        self._per_pool = max(1, min(shard_connections, max_connections))
        pools = max(1, -(-max_connections // self._per_pool))
        limits = httpx.Limits(
            max_connections=self._per_pool, max_keepalive_connections=self._per_pool
        )
        options.setdefault("verify", httpx.create_ssl_context())  # one CA load for all pools
        self._pools: list[httpx.AsyncBaseTransport] = [
            httpx.AsyncHTTPTransport(limits=limits, **options) for _ in range(pools)
        ]
        self._in_use = [0] * pools

    def in_use(self) -> list[int]:
        """Requests each pool is serving now (for tests and diagnostics)."""
        return list(self._in_use)

    def _choose(self) -> int:
        in_use, per_pool = self._in_use, self._per_pool
        for index, busy in enumerate(in_use):
            if busy < per_pool:
                return index
        return min(range(len(in_use)), key=in_use.__getitem__)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._choose()
        self._in_use[index] += 1

        def release() -> None:
            self._in_use[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _Released(response.stream, release)
        else:  # not what httpx's transport returns; nothing to wait for
            release()
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
