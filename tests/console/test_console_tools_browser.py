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
from browser_support import DESKTOP, open_tab
from business_api import BusinessApi
from console_apps import ADMIN_PASSWORD, console_app
from console_support import signed_in, visible_text
from fake_upstreams import FakeServer
from helpers import APP_SECRET, load_payload, service_env
from playwright.sync_api import Browser, expect
from respx_upstreams import FakeUpstreams
from running import start_uvicorn, wait_for

from webhook.signature import sign

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


SHOP = "https://shop.test"
TWO_TOOLS = """
[[tools]]
name = "order_status"
description = "Delivery status of an order, by its number."
url = "{api}/orders/{{order_id}}"
[tools.parameters]
type = "object"
required = ["order_id"]
properties.order_id = {{ type = "string" }}

[[tools]]
name = "stock_level"
description = "How many of an item are in stock."
url = "{api}/stock/{{item}}"
[tools.parameters]
type = "object"
required = ["item"]
properties.item = {{ type = "string" }}
"""


def call(name: str, **args: str) -> httpx.Response:
    """Gemini asking for one function, as Gemini 3 does (with its thought signature)."""
    part = {"functionCall": {"id": f"id-{name}", "name": name, "args": args}}
    return httpx.Response(200, json=gemini_reply({**part, "thoughtSignature": "c2ln"}))


async def test_the_transcript_lists_each_call_beside_its_answer(
    database_url: str, fakes: FakeUpstreams, tmp_path: Path
) -> None:
    tools = tmp_path / "tools.toml"
    tools.write_text(TWO_TOOLS.format(api=SHOP), encoding="utf-8")
    fakes.router.get(f"{SHOP}/orders/A-1").mock(return_value=httpx.Response(200, json={}))
    fakes.router.get(url__startswith=f"{SHOP}/stock/").mock(side_effect=httpx.ReadTimeout("slow"))
    fakes.gemini_queue += [
        call("order_status", order_id="A-1"),
        call("stock_level", item="cake"),
        httpx.Response(200, json=gemini_reply({"text": "It is on its way."})),
    ]
    async with console_app(database_url, fakes, tools_file=tools) as console:
        conversation = await console.write("Where is A-1?", name="Ana")
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        html = (await console.client.get(f"/console/conversations/{conversation}")).text
    text = visible_text(html)
    assert re.search(r"Tool order_status : HTTP 200, \d+ ms", text), text
    assert re.search(r"Tool stock_level : timeout, \d+ ms", text), text
    assert text.index("It is on its way.") < text.index("Tool order_status")
    assert text.index("Tool order_status") < text.index("Tool stock_level")
    assert '<ul class="tool-calls" aria-label="Tool calls">' in html


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

    tab = open_tab(browser, service, DESKTOP)
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
