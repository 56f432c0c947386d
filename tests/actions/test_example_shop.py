"""docs/tools.md's worked examples run: examples/shop_api.py served for real, called through
examples/tools.toml as the service calls it."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fake_upstreams import free_port
from helpers import ROOT

from actions.calls import ToolCaller, tools_http_client
from domain.tools import HttpTool
from domain.tools_file import read_tools_file
from ops.metrics import Metrics

TOKEN = "try-me-in-tests"
CUSTOMER = "15550000001"  # the customer of `make chat`, who has orders


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    from examples.shop_api import app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
async def caller() -> AsyncIterator[ToolCaller]:
    async with tools_http_client(4) as http:
        yield ToolCaller(http, Metrics())


def tools(shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, HttpTool]:
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    text = (ROOT / "examples" / "tools.toml").read_text(encoding="utf-8")
    path = tmp_path / "tools.toml"
    path.write_text(text.replace("http://127.0.0.1:8100", shop), encoding="utf-8")
    return {tool.name: tool for tool in read_tools_file(path).http}


async def test_order_status_answers_only_the_customers_own_orders(
    shop: str, caller: ToolCaller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_status = tools(shop, tmp_path, monkeypatch)["order_status"]
    mine = await caller.call(order_status, {"order_id": "A-1001"}, customer=CUSTOMER, business="b")
    assert mine.response == {
        "status": 200,
        "body": {"order": "A-1001", "status": "out for delivery", "eta": "today, 14:00-16:00"},
    }
    theirs = await caller.call(
        order_status, {"order_id": "B-2002"}, customer=CUSTOMER, business="b"
    )
    assert theirs.response["status"] == 404


async def test_book_table_books_under_the_customers_number(
    shop: str, caller: ToolCaller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples.shop_api import BOOKINGS

    book_table = tools(shop, tmp_path, monkeypatch)["book_table"]
    args = {"date": "2099-12-19", "time": "20:00", "people": 4, "name": "Ana"}
    booked = await caller.call(book_table, args, customer=CUSTOMER, business="b")
    assert booked.response["status"] == 201
    assert BOOKINGS[-1]["customer"] == CUSTOMER
    refused = await caller.call(book_table, {**args, "people": 20}, customer=CUSTOMER, business="b")
    assert refused.response == {"error": "people: 20 is greater than the maximum of 12"}


def test_the_shop_wants_its_token(shop: str) -> None:
    answer = httpx.get(f"{shop}/orders/A-1001", headers={"X-Customer": CUSTOMER})
    assert answer.status_code == 401
