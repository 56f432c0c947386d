"""An MCP server a business names in its tools file: one `[[mcp]]` table read and checked.

The server's tools are listed while the service runs (actions/mcp.py); what is checked here is
what can be known before: the address, the auth and its variables, who the customer is said to
be (a header), the timeout, and the names the business allows. Messages say the problem, never
a secret nor the URL.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.tools import (
    DEFAULT_TIMEOUT_SECONDS,
    NAME,
    Auth,
    auth_of,
    customer_header_of,
    timeout_of,
)

MCP_KEYS = frozenset(
    {"url", "auth", "customer_header", "timeout_seconds", "allow", "prefix"},
)
PREFIX = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class McpServer:
    """A streamable-HTTP MCP endpoint whose tools Gemini may call, with the HTTP tools' limits."""

    url: str
    label: str  # `mcp 1`: its place in the file, for messages and logs (the URL may hold a secret)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS  # listing, and each call
    customer_header: str | None = None  # the customer's wa_id in this header of each call
    auth: Auth | None = None
    allow: frozenset[str] | None = None  # None: every tool it lists
    prefix: str = ""  # put before each of its tools' names, to tell them from others

    def headers(self) -> dict[str, str]:
        """The auth header every request to the server carries (none without auth)."""
        if self.auth is None:
            return {}
        name, value = self.auth.header()
        return {name: value}


def read_mcp_server(entry: Mapping[str, Any], label: str) -> McpServer:
    """One `[[mcp]]` table as a server, or ValueError saying what is wrong with it."""
    unknown = sorted(set(entry) - MCP_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(MCP_KEYS))})")
    return McpServer(
        url=_mcp_url(entry.get("url")),
        label=label,
        timeout_seconds=timeout_of(entry.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
        customer_header=customer_header_of(entry.get("customer_header")),
        auth=auth_of(entry.get("auth")),
        allow=_allow(entry.get("allow")),
        prefix=_prefix(entry.get("prefix", "")),
    )


def _mcp_url(given: Any) -> str:
    if not isinstance(given, str) or not given.strip():
        raise ValueError("url is missing (the server's streamable HTTP endpoint, often …/mcp)")
    url = given.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("url must be an absolute http:// or https:// address")
    if "@" in parts.netloc:
        raise ValueError("url carries a user name or password; use [mcp.auth] instead")
    if parts.fragment or "#" in url:
        raise ValueError("url has a #fragment, which is never sent")
    return url


def _allow(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValueError('allow must be a list of the server\'s tool names, such as ["orders"]')
    for name in value:
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"allow: {name!r} is not a tool name Gemini can call")
    return frozenset(value)


def _prefix(value: Any) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or not PREFIX.match(value):
        raise ValueError(
            "prefix must start with a letter or _ and hold only letters, digits and _ "
            "(at most 32 characters)"
        )
    return value
