"""A business's MCP server, listed and called by the service's own MCP client against a real MCP
server (the `mcp` SDK's MCPServer over streamable HTTP on 127.0.0.1): the tools Gemini is
declared, those left out, the listing kept five minutes, and what a call gives back when the
server answers, fails, is slow, says too much or is not there."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from business_api import ORDERS
from fake_upstreams import free_port
from mcp_server import TOKEN, McpShop

from actions.mcp_session import CALL_READ_LIMIT
from actions.mcp_tools import FRESH_SECONDS, RETRY_SECONDS, McpTool, McpTools, tool_of
from domain.businesses import Business
from domain.mcp_servers import McpServer, read_mcp_server
from domain.tools import read_tool
from ops.metrics import Metrics

CUSTOMER = "16505551234"


@pytest.fixture
def shop(mcp_shop: McpShop) -> McpShop:
    return mcp_shop


@pytest.fixture
def calls(mcp_seen: McpShop) -> McpShop:
    return mcp_seen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def mcp(clock: Clock) -> AsyncIterator[McpTools]:
    tools = McpTools(Metrics(), 8, clock=clock)
    yield tools
    await tools.aclose()


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_MCP_TOKEN", TOKEN)


def server(url: str, **entry: Any) -> McpServer:
    table = {"url": url, "customer_header": "X-Customer", "timeout_seconds": 2, **entry}
    table.setdefault("auth", {"type": "bearer", "token_env": "SHOP_MCP_TOKEN"})
    return read_mcp_server(table, "mcp 1")


def business(*servers: McpServer, http: tuple[str, ...] = ()) -> Business:
    tools = tuple(
        read_tool({"name": name, "description": "An HTTP tool.", "url": "https://a.example/x"})
        for name in http
    )
    return Business(name="shop", phone_number_id="1", tools=tools, mcp=servers)


async def named(mcp: McpTools, shop: McpShop, **entry: Any) -> dict[str, McpTool]:
    return {tool.name: tool for tool in await mcp.tools(business(server(shop.endpoint, **entry)))}


async def test_the_servers_tools_are_listed_with_their_descriptions_and_schemas(
    mcp: McpTools, shop: McpShop, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        tools = await named(mcp, shop)
    assert set(tools) == {"order_status", "my_orders", "slow", "broken", "big", "huge"}
    order_status = tools["order_status"]
    assert order_status.remote == "order_status"
    assert order_status.description == (
        "Delivery status of one of the customer's orders, by its number."
    )
    assert order_status.parameters["required"] == ["order_id"]
    assert order_status.parameters["properties"]["order_id"]["type"] == "string"
    [left_out] = [r.getMessage() for r in caplog.records]
    assert "tool 'pick' left out: parameters" in left_out
    assert "'const'" in left_out
    assert shop.url not in left_out


async def test_allow_keeps_only_the_tools_named_and_says_which_are_missing(
    mcp: McpTools, shop: McpShop, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        tools = await named(mcp, shop, allow=["order_status", "my_orders", "refund"])
    assert set(tools) == {"order_status", "my_orders"}
    assert "tool 'refund' left out: the server does not list it" in caplog.text


async def test_a_prefix_goes_before_each_name_and_the_server_hears_its_own(
    mcp: McpTools, shop: McpShop
) -> None:
    tools = await named(mcp, shop, prefix="shop_", allow=["my_orders"])
    assert [(t.name, t.remote) for t in tools.values()] == [("shop_my_orders", "my_orders")]


async def test_a_name_an_http_tool_or_an_earlier_server_has_is_left_out(
    mcp: McpTools, shop: McpShop, caplog: pytest.LogCaptureFixture
) -> None:
    first = server(shop.endpoint, allow=["my_orders", "big"])
    second = read_mcp_server({"url": shop.endpoint, "allow": ["big", "slow"]}, "mcp 2")
    with caplog.at_level(logging.WARNING):
        tools = await mcp.tools(business(first, second, http=("my_orders",)))
    assert [(t.name, t.server.label) for t in tools] == [("big", "mcp 1"), ("slow", "mcp 2")]
    assert "MCP server mcp 1 of business shop: tool 'my_orders' left out: my_orders is taken" in (
        caplog.text
    )
    assert "MCP server mcp 2 of business shop: tool 'big' left out: big is taken" in caplog.text


async def test_the_listing_is_kept_five_minutes(mcp: McpTools, shop: McpShop, clock: Clock) -> None:
    assert FRESH_SECONDS == 300
    shop_business = business(server(shop.endpoint))
    assert "late_tool" not in {t.name for t in await mcp.tools(shop_business)}

    def late_tool() -> str:
        """Added while the service runs."""
        return "here"

    shop.server.add_tool(late_tool)
    try:
        clock.now += 299
        assert "late_tool" not in {t.name for t in await mcp.tools(shop_business)}
        clock.now += 2
        assert "late_tool" in {t.name for t in await mcp.tools(shop_business)}
    finally:
        shop.server.remove_tool("late_tool")


async def test_an_unreachable_server_gives_no_tools_and_is_asked_again_a_minute_later(
    mcp: McpTools, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    assert RETRY_SECONDS == 60
    nowhere = business(server(f"http://127.0.0.1:{free_port()}/mcp"))
    with caplog.at_level(logging.WARNING):
        assert await mcp.tools(nowhere) == ()
        clock.now += 59
        assert await mcp.tools(nowhere) == ()
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == (
        "MCP server mcp 1 of business shop: cannot list its tools "
        "(connection problem (ConnectError)); no tools"
    )
    clock.now += 2
    with caplog.at_level(logging.WARNING):
        await mcp.tools(nowhere)
    assert len(caplog.records) == 2


async def test_a_server_that_stops_answering_keeps_its_last_listing(
    mcp: McpTools, shop: McpShop, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with McpShop() as other:
        shop_business = business(server(other.endpoint, allow=["my_orders"]))
        assert [t.name for t in await mcp.tools(shop_business)] == ["my_orders"]
    clock.now += FRESH_SECONDS + 1
    with caplog.at_level(logging.WARNING):
        assert [t.name for t in await mcp.tools(shop_business)] == ["my_orders"]
    assert "cannot list its tools" in caplog.text and "keeping the last listing" in caplog.text


async def call(mcp: McpTools, shop: McpShop, name: str, **args: Any) -> Any:
    [tool] = [t for t in await mcp.tools(business(server(shop.endpoint))) if t.name == name]
    return await mcp.call(tool, args, customer=CUSTOMER, business="shop")


async def test_a_call_carries_the_customer_and_the_token_in_headers_only(
    mcp: McpTools, calls: McpShop
) -> None:
    result = await call(mcp, calls, "order_status", order_id="A-1001")
    assert result.response == {
        "result": {"customer": CUSTOMER, "order": ORDERS[CUSTOMER][0]},
    }
    [(name, args, headers)] = calls.calls.seen
    assert (name, args) == ("order_status", {"order_id": "A-1001"})
    assert headers["x-customer"] == CUSTOMER
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert (result.record.name, result.record.status, result.record.error) == (
        "order_status",
        None,
        None,
    )
    assert result.outcome == "ok"


async def test_an_error_result_is_a_result_gemini_reads(mcp: McpTools, calls: McpShop) -> None:
    result = await call(mcp, calls, "broken")
    assert "the stock system is down" in result.response["error"]
    assert (result.record.error, result.outcome) == ("tool error", "tool_error")


async def test_a_long_text_is_cut_at_8_kib(mcp: McpTools, calls: McpShop) -> None:
    result = await call(mcp, calls, "big")
    assert result.response == {"result": "b" * 8192}
    assert result.outcome == "ok"


async def test_a_result_over_the_read_limit_is_not_read(mcp: McpTools, calls: McpShop) -> None:
    assert CALL_READ_LIMIT == 64 * 1024
    result = await call(mcp, calls, "huge")
    assert result.response == {"error": "result too large"}
    assert (result.record.error, result.outcome) == ("result too large", "too_large")


async def test_a_slow_server_is_cut_off_at_its_timeout(mcp: McpTools, calls: McpShop) -> None:
    result = await call(mcp, calls, "slow")
    assert result.response == {"error": "timeout"}
    assert result.outcome == "timeout"
    assert 2000 <= result.record.duration_ms < 4000


async def test_a_server_gone_after_its_listing_is_a_connection_problem(
    mcp: McpTools, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with McpShop() as other:
        [tool] = await mcp.tools(business(server(other.endpoint, allow=["my_orders"])))
    with caplog.at_level(logging.INFO):
        result = await mcp.call(tool, {}, customer=CUSTOMER, business="shop")
    assert result.response == {"error": "connection problem (ConnectError)"}
    assert result.outcome == "connection_error"
    [line] = [r for r in caplog.records if r.name == "actions.mcp_tools"]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("tool my_orders: connection problem (ConnectError) in ")
    assert CUSTOMER not in caplog.text


def test_local_references_are_inlined_and_others_leave_the_tool_out() -> None:
    from mcp.types import Tool

    mcp_server = read_mcp_server({"url": "https://mcp.example/mcp"}, "mcp 1")
    item = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
    nested = Tool(
        name="add_items",
        input_schema={
            "type": "object",
            "$defs": {"Item": item},
            "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        },
    )
    made = tool_of(nested, mcp_server)
    assert isinstance(made, McpTool)
    assert made.parameters["properties"]["items"]["items"] == item
    assert made.description == "add_items"  # no description: its name
    elsewhere = Tool(
        name="far",
        input_schema={"type": "object", "properties": {"x": {"$ref": "https://e.example/x"}}},
    )
    assert "only references to the schema's own $defs" in str(tool_of(elsewhere, mcp_server))
    bad_name = Tool(name="get-order", input_schema={"type": "object"})
    assert "not one Gemini can call" in str(tool_of(bad_name, mcp_server))
    reserved = Tool(name="offer_choices", input_schema={"type": "object"})
    assert "the service's own function" in str(tool_of(reserved, mcp_server))
    assert json.dumps(made.parameters)  # what Gemini is declared is plain JSON
