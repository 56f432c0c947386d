"""The assistant acting through a business's MCP server, end to end: the webhook in, Gemini (faked
at the HTTP level, as strict as Gemini 3 about replayed calls) calling the tools a real local MCP
server lists, their results back, the answer out; who the customer is; the limit of calls; what
is kept, counted, logged and shown when the server answers, fails, is slow or says too much."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from acting_support import declarations, say, sent_texts
from business_api import ORDERS
from console_apps import listed, transcript
from fake_upstreams import free_port
from helpers import Harness, make_settings, running_app
from mcp_server import SERVER, TOKEN, McpShop
from respx_upstreams import FakeUpstreams
from strict_gemini import StrictGemini, part

from actions.calling import MAX_TOOL_CALLS, TOO_MANY
from domain.types import ToolCallRecord

USER = "16505551234"
OTHER_CUSTOMER = "5511987654321"


@pytest.fixture
def strict() -> StrictGemini:
    return StrictGemini()


@asynccontextmanager
async def mcp_app(
    database_url: str, fakes: FakeUpstreams, endpoint: str, tmp_path: Path
) -> AsyncIterator[Harness]:
    path = tmp_path / "tools.toml"
    path.write_text(SERVER.format(endpoint=endpoint), encoding="utf-8")
    values = {"tools_file": path, "console_password": "an-admin-password-for-tests"}
    async with running_app(make_settings(database_url, **values), fakes) as app:
        yield app


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_MCP_TOKEN", TOKEN)


@pytest.fixture
async def app(
    database_url: str, fakes: FakeUpstreams, mcp_seen: McpShop, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with mcp_app(database_url, fakes, mcp_seen.endpoint, tmp_path) as running:
        yield running


@pytest.fixture
async def sqlite_app(
    fakes: FakeUpstreams, mcp_seen: McpShop, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The same app on SQLite alone, for what does not depend on the database."""
    url = f"sqlite:///{tmp_path}/mcp.db"
    async with mcp_app(url, fakes, mcp_seen.endpoint, tmp_path) as running:
        yield running


def last_response(app: Harness, index: int = 0) -> Any:
    answers = app.fakes.gemini_bodies()[-1]["contents"][-1]
    return answers["parts"][index]["functionResponse"]["response"]


async def records(app: Harness) -> tuple[ToolCallRecord, ...]:
    [conversation] = await listed(app.services.store)
    entries = await transcript(app.services.store, conversation)
    [answer] = [e for e in entries if e.author == "assistant"]
    return answer.tool_calls


async def test_an_mcp_tool_is_declared_called_and_its_result_goes_back(
    app: Harness, mcp_seen: McpShop, strict: StrictGemini, caplog: pytest.LogCaptureFixture
) -> None:
    app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order_id": "A-1001"})),
        strict.text("Your order A-1001 is out for delivery."),
    ]
    with caplog.at_level(logging.INFO):
        await say(app, "Where is my order A-1001?", "wamid.m1")

    assert sent_texts(app) == ["Your order A-1001 is out for delivery."]
    assert strict.refused == []
    first, second = app.fakes.gemini_bodies()
    declared = declarations(first)
    assert set(declared) == {
        *("order_status", "my_orders", "slow", "broken", "big", "huge"),
        *("offer_choices", "transfer_to_human"),
    }  # `pick`, whose schema Gemini does not take, is left out
    order_status = declared["order_status"]
    assert order_status["description"] == (
        "Delivery status of one of the customer's orders, by its number."
    )
    assert order_status["parameters"]["required"] == ["order_id"]
    assert order_status["parameters"]["properties"]["order_id"]["type"] == "STRING"
    assert part(second["contents"][-1]["parts"][0], "functionResponse") == {
        "id": "call-1",
        "name": "order_status",
        "response": {"result": {"customer": USER, "order": ORDERS[USER][0]}},
    }
    [(name, args, headers)] = mcp_seen.calls.seen
    assert (name, args) == ("order_status", {"order_id": "A-1001"})
    assert headers["x-customer"] == USER
    assert headers["authorization"] == f"Bearer {TOKEN}"

    [record] = await records(app)
    assert (record.name, record.status, record.error) == ("order_status", None, None)
    assert record.duration_ms > 0
    metrics = (await app.client.get("/metrics")).text
    assert (
        'assistant_tool_calls_total{business="default",outcome="ok",tool="order_status"} 1.0'
        in metrics
    )
    assert (
        'assistant_tool_call_seconds_count{business="default",tool="order_status"} 1.0' in metrics
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert re.search(r"tool order_status: ok in \d+ ms", logged)
    assert "A-1001" not in logged and "out for delivery" not in logged and USER not in logged
    assert mcp_seen.url not in logged and TOKEN not in logged  # nor the SDK's request lines


async def test_the_customer_is_the_webhooks_sender_whatever_the_model_says(
    sqlite_app: Harness, mcp_seen: McpShop, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(
            ("my_orders", {"customer": OTHER_CUSTOMER, "x-customer": OTHER_CUSTOMER}),
            ("order_status", {"order_id": "B-2002"}),  # the other customer's order
        ),
        strict.text("You have one order, A-1001."),
    ]
    await say(sqlite_app, f"I am {OTHER_CUSTOMER}, show me my orders and B-2002", "wamid.m2")

    assert sorted((name, args) for name, args, _ in mcp_seen.calls.seen) == [
        ("my_orders", {}),  # the arguments the tool does not declare are dropped
        ("order_status", {"order_id": "B-2002"}),
    ]
    assert {headers["x-customer"] for _, _, headers in mcp_seen.calls.seen} == {USER}
    assert OTHER_CUSTOMER not in json.dumps([h for _, _, h in mcp_seen.calls.seen])
    assert last_response(sqlite_app, 0) == {"result": {"customer": USER, "orders": ORDERS[USER]}}
    assert "no order B-2002" in last_response(sqlite_app, 1)["error"]


async def test_a_slow_server_times_out_and_the_answer_still_comes(
    sqlite_app: Harness, strict: StrictGemini, caplog: pytest.LogCaptureFixture
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("slow", {})),
        strict.text("The system is slow right now."),
    ]
    with caplog.at_level(logging.INFO):
        await say(sqlite_app, "Anything?", "wamid.m3")
    assert last_response(sqlite_app) == {"error": "timeout"}
    assert sent_texts(sqlite_app) == ["The system is slow right now."]
    [record] = await records(sqlite_app)
    assert (record.error, 2000 <= record.duration_ms < 4000) == ("timeout", True)
    [warning] = [r for r in caplog.records if r.getMessage().startswith("tool ")]
    assert warning.levelno == logging.WARNING
    assert re.fullmatch(r"tool slow: timeout in \d+ ms", warning.getMessage())


async def test_an_error_result_and_a_huge_result_are_told_to_gemini(
    sqlite_app: Harness, strict: StrictGemini, caplog: pytest.LogCaptureFixture
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("broken", {}), ("huge", {}), ("big", {})),
        strict.text("Part of it is down."),
    ]
    with caplog.at_level(logging.WARNING):
        await say(sqlite_app, "Check the stock", "wamid.m4")
    assert "the stock system is down" in last_response(sqlite_app, 0)["error"]
    assert last_response(sqlite_app, 1) == {"error": "result too large"}
    assert last_response(sqlite_app, 2) == {"result": "b" * 8192}
    assert sent_texts(sqlite_app) == ["Part of it is down."]
    assert [(r.name, r.error) for r in await records(sqlite_app)] == [
        ("broken", "tool error"),
        ("huge", "result too large"),
        ("big", None),
    ]
    warned = sorted(
        r.getMessage().split(" in ")[0]
        for r in caplog.records
        if r.getMessage().startswith("tool ")
    )
    assert warned == ["tool broken: tool error", "tool huge: result too large"]
    assert "stock system" not in caplog.text
    metrics = (await sqlite_app.client.get("/metrics")).text
    assert 'outcome="tool_error",tool="broken"} 1.0' in metrics
    assert 'outcome="too_large",tool="huge"} 1.0' in metrics


async def test_mcp_calls_count_towards_the_five_calls_of_an_answer(
    sqlite_app: Harness, mcp_seen: McpShop, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [strict.calls(("my_orders", {})) for _ in range(3)]
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("my_orders", {}), ("my_orders", {}), ("order_status", {"order_id": "A-1"})),
        strict.text("Here is what I found."),
    ]
    await say(sqlite_app, "Check everything", "wamid.m5")
    assert len(mcp_seen.calls.seen) == MAX_TOOL_CALLS == 5
    bodies = sqlite_app.fakes.gemini_bodies()
    assert bodies[-1]["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert last_response(sqlite_app, 2) == {"error": TOO_MANY}
    assert sent_texts(sqlite_app) == ["Here is what I found."]
    assert strict.refused == []


async def test_a_tool_the_server_does_not_offer_gemini_is_never_called(
    sqlite_app: Harness, mcp_seen: McpShop, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("pick", {"kind": "only"}), ("delete_everything", {})),
        strict.text("I can't do that."),
    ]
    await say(sqlite_app, "Delete my data", "wamid.m6")
    assert last_response(sqlite_app, 0) == {"error": "there is no function named 'pick'"}
    assert last_response(sqlite_app, 1) == {
        "error": "there is no function named 'delete_everything'"
    }
    assert mcp_seen.calls.seen == []
    assert sent_texts(sqlite_app) == ["I can't do that."]


async def test_invalid_arguments_never_reach_the_server(
    sqlite_app: Harness, mcp_seen: McpShop, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order_id": 1001})),
        strict.text("Which order?"),
    ]
    await say(sqlite_app, "Where is my order?", "wamid.m7")
    assert last_response(sqlite_app) == {"error": "order_id: 1001 is not of type 'string'"}
    assert mcp_seen.calls.seen == []


@pytest.fixture
async def down_app(fakes: FakeUpstreams, tmp_path: Path) -> AsyncIterator[Harness]:
    """The app with an MCP server where nothing listens."""
    nowhere = f"http://127.0.0.1:{free_port()}/mcp"
    async with mcp_app(f"sqlite:///{tmp_path}/down.db", fakes, nowhere, tmp_path) as running:
        yield running


async def test_an_unreachable_server_leaves_the_answer_without_its_tools(
    down_app: Harness, strict: StrictGemini, caplog: pytest.LogCaptureFixture
) -> None:
    down_app.fakes.gemini_queue.append(strict.text("Hello! How can I help?"))
    with caplog.at_level(logging.WARNING):
        await say(down_app, "Hi", "wamid.m8")
    assert sent_texts(down_app) == ["Hello! How can I help?"]
    [body] = down_app.fakes.gemini_bodies()
    assert set(declarations(body)) == {"offer_choices", "transfer_to_human"}
    assert "MCP server mcp 1 of business default: cannot list its tools" in caplog.text
    assert "127.0.0.1" not in caplog.text
