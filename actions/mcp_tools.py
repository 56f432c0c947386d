"""A business's tools from its MCP servers: listed (cached a few minutes), declared, called.

Each tool a server lists becomes a function Gemini may call, with the HTTP tools' rules: a name
that clashes with another is left out (logged), its schema must be one Gemini takes and
arguments must match it (undeclared ones dropped), each call has the server's timeout, its result
is bounded to 8 KiB for Gemini, it counts towards the calls of an answer, and it is logged,
counted and kept like an HTTP call, never its arguments nor its result. Who the customer is goes
only in the server's customer header, from the webhook.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actions.calls import ToolResult, body_of, checked_arguments, measured
from domain.businesses import Business
from domain.mcp_servers import McpServer
from domain.tool_schemas import inlined
from domain.tools import NAME, RESERVED_NAMES, parameters_of
from domain.types import ToolCallRecord
from ops.metrics import Metrics

if TYPE_CHECKING:
    import httpx2
    from mcp.types import CallToolResult, Tool

log = logging.getLogger(__name__)

FRESH_SECONDS = 300.0  # a listing is used this long before the server is asked again
RETRY_SECONDS = 60.0  # after a listing failed
MAX_TOOLS = 64  # of one server
MAX_DESCRIPTION = 2048  # characters of a tool's description declared to Gemini
TOOL_ERROR = "tool error"


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool of an MCP server, as Gemini calls it (`name`) and as the server knows it."""

    name: str
    remote: str
    description: str
    parameters: Mapping[str, Any]
    server: McpServer


@dataclass
class _Listing:
    by_server: dict[str, tuple[McpTool, ...]] = field(default_factory=dict)
    tools: tuple[McpTool, ...] = ()
    due: float = 0.0  # when the servers are asked again
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def tool_of(listed: Tool, server: McpServer) -> McpTool | str:
    """A listed tool as a function Gemini may call, or why it cannot be one."""
    name = f"{server.prefix}{listed.name}"
    if not NAME.match(name):
        return "its name is not one Gemini can call ([a-zA-Z_][a-zA-Z0-9_]{0,63})"
    if name in RESERVED_NAMES:
        return "its name is the service's own function's"
    schema = inlined(listed.input_schema)
    if isinstance(schema, str):
        return f"parameters: {schema}"
    try:
        parameters = parameters_of(schema)
    except ValueError as exc:
        return str(exc)
    description = (listed.description or listed.title or listed.name).strip()
    return McpTool(name, listed.name, description[:MAX_DESCRIPTION], parameters, server)


def gemini_response(result: CallToolResult) -> dict[str, Any]:
    """What Gemini is told of a result, as of an HTTP tool's body: `{"result": …}` or
    `{"error": …}` with the result's text (its structured content when it has no text), the
    JSON when it parses and is at most 8 KiB, else the text cut at 8,192 bytes."""
    text = "\n".join(
        block.text if block.type == "text" else f"[{block.type} not shown]"
        for block in result.content
    )
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    if result.is_error:
        return {"error": body_of(text.encode(), None) if text else "the tool failed"}
    return {"result": body_of(text.encode(), None)}


class McpTools:
    """The MCP servers' tools of every business: listings kept per business, calls made on one
    shared connection pool (the answering lifespan closes it)."""

    def __init__(
        self,
        metrics: Metrics,
        max_connections: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from actions.mcp_session import mcp_pool

        self._pool: httpx2.AsyncBaseTransport = mcp_pool(max_connections)
        self._metrics = metrics
        self._clock = clock
        self._listings: dict[str, _Listing] = {}

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def tools(self, business: Business) -> tuple[McpTool, ...]:
        """The business's MCP tools: the last listing, asked again when it is due."""
        listing = self._listings.get(business.name)
        if listing is None:
            listing = self._listings[business.name] = _Listing()
        if self._clock() < listing.due:
            return listing.tools
        async with listing.lock:
            if self._clock() >= listing.due:  # not refreshed while this waited
                await self._refresh(business, listing)
        return listing.tools

    async def _refresh(self, business: Business, listing: _Listing) -> None:
        from actions.mcp_session import Failure, list_tools

        results = await asyncio.gather(*(list_tools(self._pool, s) for s in business.mcp))
        failed = False
        for server, result in zip(business.mcp, results, strict=True):
            if isinstance(result, Failure):
                failed = True
                log.warning(
                    "MCP server %s of business %s: cannot list its tools (%s); %s",
                    server.label,
                    business.name,
                    result.error,
                    "keeping the last listing" if server.label in listing.by_server else "no tools",
                    extra={"stage": "tool", "tenant": business.name, "mcp": server.label},
                )
            else:
                listing.by_server[server.label] = self._usable(business, server, result)
        listing.tools = self._assembled(business, listing)
        listing.due = self._clock() + (RETRY_SECONDS if failed else FRESH_SECONDS)

    def _usable(
        self, business: Business, server: McpServer, listed: list[Tool]
    ) -> tuple[McpTool, ...]:
        kept: list[McpTool] = []
        offered = {tool.name for tool in listed}
        for missing in sorted((server.allow or frozenset()) - offered):
            self._skipped(business, server, missing, "the server does not list it")
        for tool in listed:
            if server.allow is not None and tool.name not in server.allow:
                continue
            usable = tool_of(tool, server)
            if isinstance(usable, str):
                self._skipped(business, server, tool.name, usable)
            elif len(kept) >= MAX_TOOLS:
                self._skipped(business, server, tool.name, f"over {MAX_TOOLS} tools")
            else:
                kept.append(usable)
        return tuple(kept)

    def _assembled(self, business: Business, listing: _Listing) -> tuple[McpTool, ...]:
        """Each server's tools in the file's order; a name already taken (an HTTP tool's, an
        earlier tool's) is left out."""
        taken = {tool.name for tool in business.tools}
        tools: list[McpTool] = []
        for server in business.mcp:
            for tool in listing.by_server.get(server.label, ()):
                if tool.name in taken:
                    self._skipped(business, server, tool.remote, f"{tool.name} is taken")
                    continue
                taken.add(tool.name)
                tools.append(tool)
        return tuple(tools)

    @staticmethod
    def _skipped(business: Business, server: McpServer, name: str, why: str) -> None:
        log.warning(
            "MCP server %s of business %s: tool %r left out: %s",
            server.label,
            business.name,
            name[:64],
            why,
            extra={"stage": "tool", "tenant": business.name, "mcp": server.label},
        )

    async def call(
        self, tool: McpTool, args: Mapping[str, Any], *, customer: str, business: str
    ) -> ToolResult:
        """Call `tool` for `customer` (the webhook's sender); never raises for what the server
        does."""
        result = await measured(
            self._metrics,
            business,
            tool.name,
            checked_arguments(tool.parameters, args),
            lambda kept, started: self._call(tool, kept, customer, started),
        )
        record = result.record
        log.log(
            logging.INFO if result.outcome in ("ok", "invalid_arguments") else logging.WARNING,
            "tool %s: %s in %.0f ms",
            tool.name,
            record.error or "ok",
            record.duration_ms,
            extra={
                "stage": "tool",
                "tenant": business,
                "tool": tool.name,
                "mcp": tool.server.label,
                "error": record.error,
                "duration_ms": record.duration_ms,
            },
        )
        return result

    async def _call(
        self, tool: McpTool, args: dict[str, Any], customer: str, started: float
    ) -> ToolResult:
        from actions.mcp_session import Failure, call_tool

        server = tool.server
        headers = server.headers()
        if server.customer_header and customer:
            headers[server.customer_header] = customer
        result = await call_tool(self._pool, server, headers, tool.remote, args)
        duration = round((time.perf_counter() - started) * 1000, 1)
        if isinstance(result, Failure):
            record = ToolCallRecord(tool.name, None, result.error, duration)
            return ToolResult({"error": result.error}, record, result.outcome)
        response = gemini_response(result)
        error = TOOL_ERROR if result.is_error else None
        record = ToolCallRecord(tool.name, None, error, duration)
        return ToolResult(response, record, "tool_error" if result.is_error else "ok")
