"""What carries the upstream clients' requests: aiohttp sessions (a connection limit, and the
environment's proxy read once: aiohttp's `trust_env` reads it again on every request), or
httpx's own connections; and which failures mean the upstream was not reached."""

from __future__ import annotations

import sys
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Literal

import httpx

from ops.pools import ShardedTransport

if TYPE_CHECKING:  # imported when first used: the web process may never call upstreams
    import aiohttp


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY or HTTP_PROXY by its scheme,
    unless NO_PROXY covers its host), as urllib reads them."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def aiohttp_session(
    base_url: str, max_connections: int, timeout: aiohttp.ClientTimeout | None = None
) -> aiohttp.ClientSession:
    """A session for one upstream, made inside the running event loop; its owner closes it."""
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections),
        timeout=timeout or aiohttp.ClientTimeout(total=None),
        proxy=environment_proxy(base_url),
    )


def aiohttp_transport(base_url: str, max_connections: int) -> httpx.AsyncBaseTransport:
    """httpx's requests carried by aiohttp (httpx-aiohttp): the same client API, about half
    the CPU per request of httpcore and anyio (bench/RESULTS.md, section 5). The session is
    made at the first request, inside the event loop, and closed with the httpx client; the
    timeouts are the httpx client's, per request."""
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport(client=lambda: aiohttp_session(base_url, max_connections))


def upstream_transport(
    base_url: str, max_connections: int, library: Literal["aiohttp", "httpx"]
) -> httpx.AsyncBaseTransport:
    """aiohttp under httpx's client (`aiohttp_transport`), or httpx's own connections spread
    over small pools (`pools.ShardedTransport`)."""
    if library == "aiohttp":
        return aiohttp_transport(base_url, max_connections)
    return ShardedTransport(max_connections)


def unreachable(exc: BaseException) -> bool:
    """The upstream not reached, or its answer cut off: httpx's transport errors (httpx-aiohttp
    maps aiohttp's to them), and what it leaves unmapped."""
    aiohttp = sys.modules.get("aiohttp")  # loaded with the transport, if at all
    return isinstance(exc, httpx.TransportError | TimeoutError) or (
        aiohttp is not None and isinstance(exc, aiohttp.ClientError)
    )
