"""The single business's name as people see it: BUSINESS_NAME, else the one Meta verified,
asked in the background; never the internal key `default`."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import respx
from fake_upstreams import VERIFIED_NAME
from helpers import (
    PHONE_NUMBER_ID,
    WHATSAPP_TOKEN,
    Harness,
    make_settings,
    running_app,
    text_payload,
)
from respx_upstreams import FakeUpstreams, graph_error

from domain.businesses import BusinessNames
from ops.metrics import Metrics
from service.answering import running_answering
from storage.store import Store

PASSWORD = "a-console-secret-for-names"
HOOK = "https://hooks.test/services/T000/B000/NAMES"
PAGES = ("/console", "/console/knowledge", "/console/usage", "/console/operators")


def settings_with_console(database_url: str, **overrides: Any) -> Any:
    values = {"console_password": PASSWORD, "handoff_webhook_url": HOOK, **overrides}
    return make_settings(database_url, **values)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def names_of(app: Harness) -> BusinessNames:
    names: BusinessNames = app.client._transport.app.state.business_names  # type: ignore[attr-defined]
    return names


async def visible_pages(app: Harness) -> list[str]:
    """The text a signed-in admin reads on each page, markup left out."""
    signed = await app.client.post(
        "/console/login", data={"username": "admin", "password": PASSWORD}
    )
    assert signed.status_code == 303
    texts = []
    for path in PAGES:
        page = await app.client.get(path)
        assert page.status_code == 200, path
        texts.append(html.unescape(re.sub(r"<[^>]*>", " ", page.text)))
    return texts


async def handoff_notice(app: Harness, hook: respx.Route) -> str:
    payload = text_payload("/human", message_id="wamid.name-1")
    assert (await app.post(payload)).status_code == 200
    await app.settle()
    [call] = hook.calls
    text: str = json.loads(call.request.content)["text"]
    return text


async def test_the_console_and_handoff_notices_show_the_name_meta_verified(
    database_url: str, fakes: FakeUpstreams
) -> None:
    hook = fakes.router.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))
    async with running_app(settings_with_console(database_url), fakes) as app:
        await until(lambda: names_of(app).shown("default") == VERIFIED_NAME, "the name")
        pages = await visible_pages(app)
        notice = await handoff_notice(app, hook)
    [asked] = fakes.number_requests
    assert asked.url.path == f"/v25.0/{PHONE_NUMBER_ID}"
    assert asked.url.params["fields"] == "verified_name,display_phone_number"
    assert asked.headers["Authorization"] == f"Bearer {WHATSAPP_TOKEN}"
    assert all(VERIFIED_NAME in page for page in pages)  # in the header of each
    assert "answers from for Padaria Central" in " ".join(pages[1].split())
    assert not any("default" in page for page in pages)
    assert notice.startswith(f"{VERIFIED_NAME}: a customer (…1234) is waiting for a person.")


async def test_without_a_name_from_meta_nobody_reads_default(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """A token Meta refuses, for one: start-up goes on, and the pages and notices say less."""
    fakes.number_queue.append(graph_error(401, 190))
    hook = fakes.router.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))
    async with running_app(settings_with_console(database_url), fakes) as app:
        await until(lambda: len(fakes.number_requests) == 1, "the question to Meta")
        pages = await visible_pages(app)
        notice = await handoff_notice(app, hook)
    assert not any("default" in page for page in pages)
    assert "answers from for this business" in " ".join(pages[1].split())
    assert notice.startswith("A customer (…1234) is waiting for a person.")


async def test_business_name_is_shown_and_meta_not_asked(
    database_url: str, fakes: FakeUpstreams
) -> None:
    hook = fakes.router.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))
    settings = settings_with_console(database_url, business_name="Mercadinho da Vila")
    async with running_app(settings, fakes) as app:
        pages = await visible_pages(app)
        notice = await handoff_notice(app, hook)
    assert fakes.number_requests == []
    assert all("Mercadinho da Vila" in page for page in pages)
    assert notice.startswith("Mercadinho da Vila: a customer (…1234)")


async def test_an_answering_process_asks_meta_itself_only_for_its_notices(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """A worker process has no web process's names: it learns them when it notifies."""
    store = await Store.open(database_url)
    try:
        for settings, asks in (
            (settings_with_console(database_url), 1),
            (settings_with_console(database_url, handoff_webhook_url=None), 0),
            (settings_with_console(database_url, business_name="Mercadinho"), 0),
        ):
            fakes.number_requests.clear()
            async with running_answering(settings, store, Metrics()):
                await asyncio.sleep(0.2)
            assert len(fakes.number_requests) == asks
    finally:
        await store.close()
