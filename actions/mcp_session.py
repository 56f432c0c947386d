"""A short MCP session over streamable HTTP: the `mcp` SDK's client on the service's shared pool.

Each listing and each call opens its own session (its headers are that call's: the auth, and
the customer of that answer only), within the server's timeout, every response read to a bound,
and closes it. What goes wrong comes back as a `Failure`, never raised: a slow, unreachable or
talkative server costs the customer an answer without the tool, not the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool

from domain.mcp_servers import McpServer

CALL_READ_LIMIT = 64 * 1024  # bytes of one response to a call; more is "result too large"
LIST_READ_LIMIT = 1024 * 1024  # bytes of one response to a listing
MAX_PAGES = 10  # of one listing
USER_AGENT = "whatsapp-gemini-assistant"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a session gave nothing: what Gemini and the transcript are told, and the metric's
    outcome label."""

    error: str
    outcome: str  # timeout, connection_error, too_large


class TooLarge(httpx2.ReadError):
    """A response longer than the session's read limit."""


class _Limited(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, owner: _Bounded) -> None:
        self._inner = inner
        self._owner = owner
        self._read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._read += len(chunk)
            if self._read > self._owner.limit:
                self._owner.overflowed = True
                raise TooLarge("the response is larger than the limit")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Bounded(httpx2.AsyncBaseTransport):
    """One session's view of the shared pool: its headers on every request, each response
    cut off past `limit` bytes. Closing it leaves the pool open (the service closes that)."""

    def __init__(self, pool: httpx2.AsyncBaseTransport, headers: Mapping[str, str], limit: int):
        self._pool = pool
        self._headers = dict(headers)
        self.limit = limit
        self.overflowed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers.update(self._headers)
        response = await self._pool.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Limited(stream, self),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        return None


def mcp_pool(max_connections: int) -> httpx2.AsyncHTTPTransport:
    """The connections every business's MCP servers share: bounded, kept a little while."""
    return httpx2.AsyncHTTPTransport(
        limits=httpx2.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=30.0,
        )
    )


async def list_tools(pool: httpx2.AsyncBaseTransport, server: McpServer) -> list[Tool] | Failure:
    """Every tool the server lists (at most MAX_PAGES pages), or why not."""

    async def listing(client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    return await _in_session(pool, server, server.headers(), LIST_READ_LIMIT, listing)


async def call_tool(
    pool: httpx2.AsyncBaseTransport,
    server: McpServer,
    headers: Mapping[str, str],
    name: str,
    arguments: dict[str, Any],
) -> CallToolResult | Failure:
    """The server's result of one call, an error result included, or why there is none."""

    async def calling(client: Client) -> CallToolResult:
        return await client.call_tool(name, arguments)

    return await _in_session(pool, server, headers, CALL_READ_LIMIT, calling)


async def _in_session(
    pool: httpx2.AsyncBaseTransport,
    server: McpServer,
    headers: Mapping[str, str],
    limit: int,
    work: Callable[[Client], Awaitable[T]],
) -> T | Failure:
    bounded = _Bounded(pool, {"User-Agent": USER_AGENT, **headers}, limit)
    timeout = server.timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            async with httpx2.AsyncClient(transport=bounded, timeout=timeout) as http:
                transport = streamable_http_client(server.url, http_client=http)
                async with Client(transport, read_timeout_seconds=timeout, cache=None) as client:
                    return await work(client)
    except Exception as exc:  # the SDK's task groups gather what went wrong into groups
        if bounded.overflowed:
            return Failure("result too large", "too_large")
        cause = _first(exc)
        if isinstance(cause, TimeoutError | httpx2.TimeoutException):
            return Failure("timeout", "timeout")
        return Failure(f"connection problem ({type(cause).__name__})", "connection_error")


def _first(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
