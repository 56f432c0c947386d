"""Tool calls in the transcript: beside the answer that made them, the tool's name, its HTTP
status or error, and how long it took; end to end in Chromium, `uvicorn main:app` calling a real
local business API while a fake Gemini asks for it."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import DESKTOP, browser_fixture, open_tab  # noqa: F401
from business_api import BusinessApi
from console_support import ADMIN_PASSWORD, Served, console_app, signed_in, visible_text
from fake_upstreams import FakeServer
from helpers import APP_SECRET, load_payload, service_env
from memory_data import MemoryConsoleData
from playwright.sync_api import Browser, expect
from running import start_uvicorn, wait_for

from domain.types import ToolCallRecord
from whatsapp import sign

PASSWORD = "an-admin-password-tools"
CUSTOMER = "5511987650001"
TOOLS = """
[[tools]]
name = "order_status"
description = "Delivery status of an order, by its number."
url = "{api}/orders/{{order_id}}"
customer_header = "X-Customer"
[tools.parameters]
type = "object"
required = ["order_id"]
properties.order_id = {{ type = "string" }}
"""


def gemini_reply(*parts: dict[str, object]) -> dict[str, object]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": list(parts)}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4},
    }


async def test_the_transcript_lists_each_call_beside_its_answer(database_url: str) -> None:
    data = MemoryConsoleData()
    conversation = data.add_conversation(name="Ana", number="5511900001111")
    data.add_entry(conversation, "user", "Where is A-1?")
    calls = (
        ToolCallRecord("order_status", 200, None, 41.4),
        ToolCallRecord("stock_level", None, "timeout", 5003.0),
    )
    data.add_entry(conversation, "assistant", "It is on its way.", tool_calls=calls)
    async with console_app(database_url, data) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        html = (await console.client.get(f"/console/conversations/{conversation}")).text
    text = visible_text(html)
    assert "Tool order_status : HTTP 200, 41 ms" in text
    assert "Tool stock_level : timeout, 5003 ms" in text
    assert text.index("It is on its way.") < text.index("Tool order_status")
    assert '<ul class="tool-calls" aria-label="Tool calls">' in html


@pytest.fixture
def api() -> Iterator[BusinessApi]:
    with BusinessApi() as server:
        yield server


@pytest.fixture
def service(fake: FakeServer, api: BusinessApi, tmp_path: Path) -> Iterator[str]:
    tools = tmp_path / "tools.toml"
    tools.write_text(TOOLS.format(api=api.url), encoding="utf-8")
    env = service_env(
        fake.url,
        f"sqlite:///{tmp_path}/assistant.db",
        WORKER_PROCESSES="0",
        CONSOLE_PASSWORD=PASSWORD,
        TOOLS_FILE=str(tools),
        POLL_INTERVAL_SECONDS="0.2",
    )
    process, url = start_uvicorn(env, tmp_path)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def test_a_real_tool_call_shows_in_the_transcript(
    browser: Browser, service: str, fake: FakeServer, api: BusinessApi
) -> None:
    fake.recorded.gemini_replies += [
        gemini_reply(
            {
                "functionCall": {"id": "c1", "name": "order_status", "args": {"order_id": "A-1"}},
                "thoughtSignature": "c2lnbmF0dXJl",
            }
        ),
        gemini_reply({"text": "Your order A-1 is on its way."}),
    ]
    payload = load_payload("text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update({"wa_id": CUSTOMER, "profile": {"name": "Maria Lima"}})
    value["messages"][0].update({"id": "wamid.tool-1", "from": CUSTOMER, "text": {"body": "A-1?"}})
    body = json.dumps(payload).encode()
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
    assert httpx.post(f"{service}/webhook", content=body, headers=headers).status_code == 200
    wait_for(lambda: len(fake.recorded.sent) == 1, 20, "the assistant's answer")
    assert fake.recorded.sent[0]["text"]["body"] == "Your order A-1 is on its way."
    assert [r.headers["x-customer"] for r in api.requests] == [CUSTOMER]

    tab = open_tab(browser, Served(service, None, None, None), DESKTOP)  # type: ignore[arg-type]
    page = tab.page
    page.goto(f"{service}/console")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=re.compile("Maria Lima")).click()
    answer = page.locator(".entry-assistant", has_text="Your order A-1 is on its way.")
    calls = answer.get_by_role("list", name="Tool calls")
    expect(calls).to_contain_text(re.compile(r"Tool order_status: HTTP 200, \d+ ms"))
    assert tab.errors == [] and tab.dialogs == []
