"""Delivery, the 24-hour window and templates in a real browser (Debian's Chromium through
Playwright), over the real store, with Meta and Gemini faked by respx; found by what a person
sees: labels, buttons and text."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from browser_support import DESKTOP, open_tab, sign_in
from console_apps import served_console
from delivery_support import (
    WABA_ID,
    FakeTemplates,
    last_wamid,
    statuses_payload,
    template_entry,
    template_sends,
)
from helpers import APP_SECRET, text_payload
from playwright.sync_api import Browser, expect
from respx_upstreams import FakeUpstreams
from running import wait_for

from webhook.signature import sign

LIVE_MS = 5000  # the contract: within 5 seconds, without a reload
ORDER = template_entry("order_update", "Olá {{1}}, seu pedido {{2}} saiu para entrega")
WELCOME = template_entry("welcome", "Hi {{first_name}}, welcome!", language="en", named=True)


def post(url: str, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET), "Content-Type": "application/json"}
    assert httpx.post(f"{url}/webhook", content=body, headers=headers).status_code == 200


def test_status_words_the_window_and_a_template_in_the_browser(
    browser: Browser, tmp_path: Path, fakes: FakeUpstreams
) -> None:
    FakeTemplates([ORDER, WELCOME], page_size=5).install(fakes.router)
    with served_console(
        f"sqlite:///{tmp_path}/browser.db", fakes, whatsapp_business_account_id=WABA_ID
    ) as served:
        post(served.url, text_payload("Where is my order?", message_id="wamid.b-1"))
        wait_for(lambda: len(fakes.sent()) == 1, 20, "the assistant's answer")
        answer = last_wamid(fakes)
        old = int(time.time()) - 30 * 3600
        post(
            served.url,
            text_payload("Hello?", message_id="wamid.b-2", wa_id="5511900002222", ts=old),
        )

        tab = open_tab(browser, served.url, DESKTOP)
        page = tab.page
        sign_in(tab)
        page.goto(f"{served.url}/console/conversations/1")
        expect(page.get_by_text("Where is my order?", exact=True)).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Window open until"))).to_be_visible()

        post(served.url, statuses_payload((answer, "delivered")))
        expect(page.get_by_text("Delivered", exact=True)).to_be_visible(timeout=LIVE_MS)
        post(served.url, statuses_payload((answer, "read"), (answer, "delivered")))
        expect(page.get_by_text("Read", exact=True)).to_be_visible(timeout=LIVE_MS)

        template = page.get_by_label("Template", exact=True)
        expect(template).to_have_value("order_update|pt_BR")
        template.select_option(label="welcome (en)")  # its field at once, without a reload
        expect(page.get_by_label("first_name", exact=True)).to_be_visible()
        expect(page.get_by_label("Parameter 1", exact=True)).to_have_count(0)
        page.get_by_role("button", name="Send template").click()
        expect(page.get_by_text("Not sent: first_name is empty.", exact=False)).to_be_visible()
        assert template_sends(fakes.graph_calls) == []

        page.get_by_label("Template", exact=True).select_option(label="order_update (pt_BR)")
        page.get_by_label("Parameter 1", exact=True).fill("Ana")
        page.get_by_label("Parameter 2", exact=True).fill("4471")
        page.get_by_role("button", name="Send template").click()
        expect(page.get_by_text("Template sent.")).to_be_visible()
        transcript = page.locator(".transcript")
        expect(transcript).to_contain_text("Olá Ana, seu pedido 4471 saiu para entrega")
        expect(page.get_by_text("With you")).to_be_visible()  # sending one takes it over
        failure = (last_wamid(fakes), "failed", 131049, "This message was not delivered")
        post(served.url, statuses_payload(failure))
        expect(page.get_by_text("Failed: This message was not delivered (131049)")).to_be_visible(
            timeout=LIVE_MS
        )

        page.goto(f"{served.url}/console/conversations/2")
        expect(page.get_by_text("Hello?", exact=True)).to_be_visible()
        expect(page.get_by_text("Window closed", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Send template")).to_be_visible()  # either way
        assert tab.errors == [] and tab.dialogs == []
