"""The example shop's tools as an MCP server (examples/mcp-tools.toml): order status, bookings.

    SHOP_MCP_TOKEN=try-me .venv/bin/uvicorn examples.shop_mcp:app --port 8200

The `mcp` SDK's MCPServer over streamable HTTP at `/mcp`. Every request needs
`Authorization: Bearer $SHOP_MCP_TOKEN`. Who is asking comes from the `X-Customer` header alone
(the WhatsApp sender the assistant answers), never from a tool's arguments. It shares the
orders and bookings of examples/shop_api.py, in memory.
"""

from __future__ import annotations

import datetime
import hmac
import os
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from examples.shop_api import BOOKINGS, ORDERS

shop = MCPServer("example-shop", log_level="WARNING")


def customer_of(ctx: Context) -> str:
    """The customer a call is for: the service's `X-Customer` header, never an argument."""
    customer = {k.lower(): v for k, v in (ctx.headers or {}).items()}.get("x-customer", "")
    if not customer:
        raise ToolError("X-Customer is missing")
    return customer


@shop.tool()
def order_status(order_id: str, ctx: Context) -> dict[str, Any]:
    """Delivery status of one of the customer's orders, by its number (for example A-1001)."""
    order = ORDERS.get(customer_of(ctx), {}).get(order_id)
    if order is None:  # someone else's order is as unknown as no order at all
        raise ToolError(f"no order {order_id} for this customer")
    return {"order": order_id, **order}


@shop.tool()
def book_table(
    date: datetime.date, time: str, people: int, ctx: Context, name: str | None = None
) -> dict[str, Any]:
    """Book a table for the customer. Ask for the day, the time (HH:MM) and how many people
    (1 to 12) first."""
    customer = customer_of(ctx)
    if date < datetime.date.today():
        raise ToolError("that day has passed")
    if not 1 <= people <= 12:
        raise ToolError("a table is for 1 to 12 people")
    number = f"R-{len(BOOKINGS) + 1:04d}"
    booking = {"date": date.isoformat(), "time": time, "people": people, "name": name}
    BOOKINGS.append({"number": number, "customer": customer, **booking})
    return {"booking": number, "date": date.isoformat(), "time": time}


def with_bearer_token(inner: Any) -> Any:
    """The server's ASGI app, answering 401 to a request without the right bearer token."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            token = os.environ.get("SHOP_MCP_TOKEN", "")
            given = headers.get(b"authorization", b"").decode()
            if not token or not hmac.compare_digest(given, f"Bearer {token}"):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                body = b"a valid bearer token is needed"
                await send({"type": "http.response.body", "body": body})
                return
        await inner(scope, receive, send)

    return app


app = with_bearer_token(shop.streamable_http_app())
