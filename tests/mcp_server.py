"""A business's MCP server as the MCP tools tests call it: the `mcp` SDK's own server (MCPServer,
streamable HTTP) under uvicorn on 127.0.0.1 in a thread, recording the headers of every call.

Its tools: `order_status` and `my_orders` (the caller's orders, by the customer header alone),
`slow` (after SLOW_SECONDS), `broken` (an error result), `big` (20,000 characters), `huge`
(100,000: more than a call may read), `pick` (a schema Gemini cannot take: `const`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from business_api import ORDERS
from fake_upstreams import ServedInThread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

SLOW_SECONDS = 5.0
TOKEN = "mcp-server-token-77a1"
# A tools file naming the server ({endpoint}), its token in SHOP_MCP_TOKEN.
SERVER = """
[[mcp]]
url = "{endpoint}"
customer_header = "X-Customer"
timeout_seconds = 2
[mcp.auth]
type = "bearer"
token_env = "SHOP_MCP_TOKEN"
"""


@dataclass
class Calls:
    """The headers of each tool call, in arrival order, with the tool's name and arguments."""

    seen: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)


def build_server(calls: Calls) -> tuple[Any, Any]:
    """The server and its ASGI app (which needs its lifespan: the SDK's session manager runs in
    it)."""
    server: MCPServer = MCPServer("shop", log_level="WARNING")

    def heard(ctx: Context, name: str, **args: Any) -> str:
        headers = {key.lower(): value for key, value in (ctx.headers or {}).items()}
        calls.seen.append((name, args, headers))
        if headers.get("authorization") != f"Bearer {TOKEN}":
            raise ToolError("not authorised")
        return headers.get("x-customer", "")

    @server.tool()
    def order_status(order_id: str, ctx: Context) -> dict[str, Any]:
        """Delivery status of one of the customer's orders, by its number."""
        customer = heard(ctx, "order_status", order_id=order_id)
        found = [o for o in ORDERS.get(customer, []) if o["number"] == order_id]
        if not found:
            raise ToolError(f"no order {order_id}")
        return {"customer": customer, "order": found[0]}

    @server.tool()
    def my_orders(ctx: Context) -> dict[str, Any]:
        """Every order of the customer."""
        customer = heard(ctx, "my_orders")
        return {"customer": customer, "orders": ORDERS.get(customer, [])}

    @server.tool()
    async def slow(ctx: Context) -> str:
        """Answers after a few seconds."""
        heard(ctx, "slow")
        await asyncio.sleep(SLOW_SECONDS)
        return "late"

    @server.tool()
    def broken(ctx: Context) -> str:
        """Always fails."""
        heard(ctx, "broken")
        raise ToolError("the stock system is down")

    @server.tool()
    def big(ctx: Context) -> str:
        """A long answer."""
        heard(ctx, "big")
        return "b" * 20_000

    @server.tool()
    def huge(ctx: Context) -> str:
        """An answer too long to read."""
        heard(ctx, "huge")
        return "h" * 100_000

    @server.tool()
    def pick(kind: Literal["only"]) -> str:
        """A tool whose schema Gemini does not take (a single-value Literal is `const`)."""
        return kind

    return server, server.streamable_http_app()


class McpShop(ServedInThread):
    """The MCP server, served in a background thread; `url` is its endpoint."""

    def __init__(self) -> None:
        self.calls = Calls()
        self.server, app = build_server(self.calls)
        super().__init__(app, "MCP server", lifespan="on")

    @property
    def endpoint(self) -> str:
        return f"{self.url}/mcp"
