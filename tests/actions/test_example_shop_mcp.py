"""docs/tools.md's MCP example runs: examples/shop_mcp.py served for real, listed and called
through examples/mcp-tools.toml as the service lists and calls it."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fake_upstreams import ServedInThread
from helpers import ROOT

from actions.mcp_tools import McpTools
from domain.businesses import Business
from domain.tools_file import read_tools_file
from ops.metrics import Metrics

TOKEN = "try-me-in-tests"
CUSTOMER = "15550000001"  # the customer of `make chat`, who has orders


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    from examples.shop_mcp import app

    with ServedInThread(app, "example MCP shop", lifespan="on") as served:
        yield served.url


@pytest.fixture
async def mcp() -> AsyncIterator[McpTools]:
    tools = McpTools(Metrics(), 4)
    yield tools
    await tools.aclose()


def business(shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str) -> Business:
    """The business of examples/mcp-tools.toml, which sends `token` (the server expects TOKEN:
    both read their environment, in this one process)."""
    monkeypatch.setenv("SHOP_MCP_TOKEN", TOKEN)
    monkeypatch.setenv("SENT_MCP_TOKEN", token)
    text = (ROOT / "examples" / "mcp-tools.toml").read_text(encoding="utf-8")
    text = text.replace('"SHOP_MCP_TOKEN"', '"SENT_MCP_TOKEN"')
    path = tmp_path / "tools.toml"
    path.write_text(text.replace("http://127.0.0.1:8200", shop), encoding="utf-8")
    return Business(name="shop", phone_number_id="1", mcp=read_tools_file(path).mcp)


async def test_the_example_server_lists_its_tools_and_answers_by_the_customer_header(
    shop: str, mcp: McpTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = {t.name: t for t in await mcp.tools(business(shop, tmp_path, monkeypatch, TOKEN))}
    assert set(tools) == {"order_status", "book_table"}
    assert tools["book_table"].parameters["required"] == ["date", "time", "people"]

    mine = await mcp.call(
        tools["order_status"], {"order_id": "A-1001"}, customer=CUSTOMER, business="shop"
    )
    assert mine.response["result"]["status"] == "out for delivery"
    theirs = await mcp.call(
        tools["order_status"], {"order_id": "B-2002"}, customer=CUSTOMER, business="shop"
    )
    assert "no order B-2002 for this customer" in theirs.response["error"]

    day = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
    args = {"date": day, "time": "20:00", "people": 4, "name": "Ana"}
    booked = await mcp.call(tools["book_table"], args, customer=CUSTOMER, business="shop")
    assert booked.response["result"]["date"] == day
    from examples.shop_api import BOOKINGS

    assert BOOKINGS[-1]["customer"] == CUSTOMER


async def test_the_example_server_refuses_a_wrong_token(
    shop: str, mcp: McpTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await mcp.tools(business(shop, tmp_path, monkeypatch, "not-the-token")) == ()
