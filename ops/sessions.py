"""aiohttp sessions for the upstream clients: a connection limit, and the environment's proxy
read once (aiohttp's `trust_env` reads it again on every request)."""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when first used: the web process may never call upstreams
    import aiohttp
    import httpx


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
