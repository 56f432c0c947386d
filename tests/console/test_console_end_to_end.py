"""The whole way round, as a business uses it: `uvicorn main:app` with a worker process, a fake
Meta and Gemini, WhatsApp messages arriving, and an operator in Chromium taking one over."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import DESKTOP, Tab, open_tab
from fake_upstreams import FakeServer
from helpers import APP_SECRET, load_payload, service_env
from playwright.sync_api import Browser, expect
from running import start_uvicorn, wait_for

from webhook.signature import sign

PASSWORD = "an-admin-password-e2e"
LIVE_MS = 5000  # the contract: within 5 seconds, without a reload
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">Eve'
HOSTILE_TEXT = "<script>window.__xss=2</script>is this safe?"


def post(url: str, text: str, message_id: str, wa_id: str, name: str) -> None:
    payload = load_payload("text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update({"wa_id": wa_id, "profile": {"name": name}})
    value["messages"][0].update({"id": message_id, "from": wa_id, "text": {"body": text}})
    body = json.dumps(payload).encode()
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
    assert httpx.post(f"{url}/webhook", content=body, headers=headers).status_code == 200


@pytest.fixture
def service(fake: FakeServer, tmp_path: Path) -> Iterator[str]:
    env = service_env(
        fake.url,
        f"sqlite:///{tmp_path}/assistant.db",
        WORKER_PROCESSES="1",
        CONSOLE_PASSWORD=PASSWORD,
        POLL_INTERVAL_SECONDS="0.2",
    )
    process, url = start_uvicorn(env, tmp_path)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def signed_in(browser: Browser, url: str) -> Tab:
    tab = open_tab(browser, url, DESKTOP)
    page = tab.page
    page.goto(f"{url}/console")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    return tab


def test_an_operator_takes_a_real_conversation_over_replies_and_hands_it_back(
    browser: Browser, service: str, fake: FakeServer
) -> None:
    url = service
    tab = signed_in(browser, url)
    page = tab.page

    post(url, "Do you deliver on Sundays?", "wamid.e2e-1", "5511987650001", "Maria Lima")
    wait_for(lambda: len(fake.recorded.sent) == 1, 20, "the assistant's answer")
    maria = page.get_by_role("link", name=re.compile("Maria Lima"))
    expect(maria).to_be_visible(timeout=LIVE_MS)

    post(url, "/human", "wamid.e2e-2", "5511987650001", "Maria Lima")
    expect(page.get_by_role("link", name=re.compile(r"Maria Lima.*Waiting"))).to_be_visible(
        timeout=LIVE_MS
    )
    post(url, HOSTILE_TEXT, "wamid.e2e-3", "5511987650002", HOSTILE_NAME)
    expect(page.get_by_role("link", name=re.compile("Eve"))).to_be_visible(timeout=LIVE_MS)
    expect(page.get_by_text(HOSTILE_NAME, exact=False)).to_be_visible()  # shown as text

    page.get_by_role("link", name=re.compile("Maria Lima")).click()
    expect(page.get_by_text("Do you deliver on Sundays?", exact=True)).to_be_visible()
    expect(page.get_by_text("*Echo:* Do you deliver on Sundays?", exact=False)).to_be_visible()
    page.get_by_role("button", name="Take over").click()
    expect(page.get_by_text("Taken over by admin")).to_be_visible()
    expect(page.get_by_text("With you")).to_be_visible()
    page.get_by_label("Reply").fill("Yes, from 8 to 12. I'm Ana from the shop.")
    page.get_by_role("button", name="Send").click()
    reply = {"to": "5511987650001", "body": "Yes, from 8 to 12. I'm Ana from the shop."}
    wait_for(
        lambda: reply in [{"to": m["to"], "body": m["text"]["body"]} for m in fake.recorded.sent],
        20,
        "the operator's reply on WhatsApp",
    )

    asked = len(fake.recorded.gemini)
    post(url, "Great, thanks!", "wamid.e2e-4", "5511987650001", "Maria Lima")
    expect(page.get_by_text("Great, thanks!")).to_be_visible(timeout=LIVE_MS)  # live
    assert len(fake.recorded.gemini) == asked  # a person has it: Gemini stays out

    page.get_by_role("button", name="Hand back").click()
    expect(page.get_by_text("Handed back to the assistant by admin")).to_be_visible()
    post(url, "One more: do you have gluten-free bread?", "wamid.e2e-5", "5511987650001", "M")
    wait_for(lambda: len(fake.recorded.gemini) == asked + 1, 20, "Gemini answering again")
    history = json.dumps(fake.recorded.gemini[-1]["contents"])
    assert "I'm Ana from the shop." in history

    page.goto(f"{url}/console")
    expect(page.get_by_role("link", name=re.compile("Eve"))).to_be_visible()
    page.get_by_role("link", name=re.compile("Eve")).click()
    expect(page.get_by_text(HOSTILE_TEXT, exact=True)).to_be_visible()  # text, not markup
    assert page.evaluate("window.__xss === undefined")
    assert tab.dialogs == [] and tab.errors == []
