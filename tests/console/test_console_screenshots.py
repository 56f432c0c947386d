"""The admin adds an operator in the browser, and the docs' screenshots are taken as that
operator (UPDATE_SCREENSHOTS=1 writes docs/screenshots/; other runs leave them alone; `-k usage`
writes the Usage page's alone). The demo's customers write through signed webhooks; its
documents and figures go into the store and the fake File Search as the service puts them."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import DESKTOP, PHONE, open_tab, sign_in
from console_apps import Served, Tenant, number_id, served_console
from helpers import ROOT
from knowledge_support import add_document
from playwright.sync_api import Browser, ViewportSize, expect
from respx_upstreams import FakeUpstreams, gemini_answer
from sqlalchemy import update
from usage_support import add_day

from answering.handoff import HANDOFF_REQUESTED
from answering.operators import TAKEN_OVER
from domain.types import ConversationState
from storage.schema import conversations, turns
from storage.store import Store

SCREENSHOTS = ROOT / "docs" / "screenshots"
BAKERY = "Padaria Central"
MARIA_PASSWORD = "maria-bakery-2026"
CARLOS = "Posso falar com alguém sobre uma encomenda grande?"


async def age(store: Store, conversation_id: int, seconds: float) -> None:
    """Move a conversation `seconds` into the past. The store stamps rows with the time they
    are written; a screenshot shows an afternoon's conversations, not one minute's."""
    found = await store.states.get(conversation_id)
    assert found is not None
    async with store.engine.begin() as conn:
        await conn.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(
                last_activity_at=conversations.c.last_activity_at - seconds,
                last_user_at=conversations.c.last_user_at - seconds,
                state_since=conversations.c.state_since - seconds,
            )
        )
        await conn.execute(
            update(turns)
            .where(turns.c.conversation_key == found.conversation_key)
            .values(created_at=turns.c.created_at - seconds)
        )


def demo_conversations(served: Served) -> int:
    """An afternoon at the bakery; the conversation maria has taken over."""
    people = [
        ("Joana Ribeiro", "5511987650001", "Vocês abrem no domingo?", 46 * 60),
        ("Carlos Mendes", "5521912340002", CARLOS, 17 * 60),
        (None, "5531955550003", "Quanto custa o bolo de cenoura?", 3 * 3600),
        ("Lucía Fernández", "5491144440004", "¿Hacen envíos a domicilio?", 26 * 3600),
    ]
    for name, number, text, ago in people:
        conversation = served.write(text, name=name, wa_id=number)
        if name == "Carlos Mendes":
            served.write("/human", name=name, wa_id=number)
        served.run(age(served.store, conversation, ago))
    rafael = {"name": "Rafael Costa", "wa_id": "5511934560005"}
    answer = (
        "Fazemos sim! O bolo de chocolate e o de laranja têm versão sem glúten, "
        "com encomenda de 48 horas."
    )
    served.fakes.gemini_queue.append(gemini_answer(answer))
    rafa = served.write("Oi! Vocês fazem bolo sem glúten?", **rafael)
    served.write("Quero encomendar um para sábado, mas prefiro falar com uma pessoa", **rafael)
    key = served.conversation(rafa).conversation_key
    states = served.store.states
    served.run(states.change(key, ConversationState.WAITING, event=HANDOFF_REQUESTED))
    served.run(states.change(key, ConversationState.OPERATOR, event=TAKEN_OVER, operator="maria"))
    greeting = "Olá Rafael, aqui é a Maria! Para quantas pessoas seria?"
    served.run(states.operator_wrote(key, "maria", [greeting]))
    served.write("Umas 15 pessoas. Dá para escrever 'Parabéns Lia'?", **rafael)
    return rafa


@pytest.fixture(name="demo")
def demo_fixture(tmp_path: Path, fakes: FakeUpstreams) -> Iterator[Served]:
    """The bakery with a budget of its own and a per-user limit, behind uvicorn."""
    database_url = f"sqlite:///{tmp_path}/demo.db"
    bakery = Tenant(BAKERY, daily_budget_usd=0.5)
    with served_console(
        database_url, fakes, businesses=[bakery], user_daily_token_limit=40_000
    ) as served:
        yield served


def test_the_admin_adds_an_operator_who_then_signs_in(browser: Browser, served: Served) -> None:
    add_maria(browser, served)
    tab = open_tab(browser, served.url, PHONE)
    sign_in(tab, "maria", MARIA_PASSWORD)
    expect(tab.page.get_by_role("link", name="Operators")).to_have_count(0)


def add_maria(browser: Browser, served: Served) -> None:
    """The admin adds the operator `maria` on the Operators page, serving the one business."""
    tab = open_tab(browser, served.url, DESKTOP)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Operators").click()
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password", exact=True).fill(MARIA_PASSWORD)
    expect(page.get_by_label(BAKERY)).to_be_checked()
    page.get_by_role("button", name="Add operator").click()
    expect(page.get_by_text("Added maria.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.context.close()


def test_screenshots(browser: Browser, demo: Served) -> None:
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        pytest.skip("UPDATE_SCREENSHOTS=1 writes docs/screenshots/")
    rafa = demo_conversations(demo)
    add_maria(browser, demo)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        tab = open_tab(browser, demo.url, viewport, timezone="America/Sao_Paulo")
        sign_in(tab, "maria", MARIA_PASSWORD)
        tab.page.screenshot(path=str(SCREENSHOTS / f"console-list{suffix}.png"))
        tab.page.goto(f"{tab.url}/console/conversations/{rafa}")
        tab.page.get_by_label("Reply").fill("Claro! Escrevemos sim.")
        tab.page.screenshot(path=str(SCREENSHOTS / f"console-conversation{suffix}.png"))
        tab.page.context.close()
    demo.run(demo_knowledge(demo))
    tab = open_tab(browser, demo.url, DESKTOP, timezone="America/Sao_Paulo")
    sign_in(tab, "maria", MARIA_PASSWORD)
    tab.page.get_by_role("link", name="Knowledge").click()
    tab.page.screenshot(path=str(SCREENSHOTS / "console-knowledge.png"))
    tab.page.context.close()


def test_portuguese_phone_screenshots(browser: Browser, demo: Served) -> None:
    """The README's screenshots: the console as a Brazilian shop owner's phone shows it (the
    browser asks for pt-BR), at 390 pixels."""
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        pytest.skip("UPDATE_SCREENSHOTS=1 writes docs/screenshots/")
    rafa = demo_conversations(demo)
    add_maria(browser, demo)
    tab = open_tab(browser, demo.url, PHONE, timezone="America/Sao_Paulo", locale="pt-BR")
    page = tab.page
    page.goto(f"{tab.url}/console")
    page.get_by_label("Usuário").fill("maria")
    page.get_by_label("Senha").fill(MARIA_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("heading", name="Conversas")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "console-list-pt-BR-phone.png"))
    page.goto(f"{tab.url}/console/conversations/{rafa}")
    page.get_by_label("Resposta").fill("Claro! Escrevemos sim.")
    page.screenshot(path=str(SCREENSHOTS / "console-conversation-pt-BR-phone.png"))
    page.context.close()


async def demo_knowledge(served: Served) -> None:
    """The bakery's documents: two from the folder, one uploaded here still processing."""
    now = dt.datetime.now(dt.UTC).timestamp()
    day = 24 * 3600
    await add_document(served, "Cardápio 2026.pdf", size_bytes=2_417_000, created=now - 12 * day)
    await add_document(served, "Horários e feriados.md", size_bytes=3_100, created=now - 12 * day)
    await add_document(
        served,
        "Encomendas de festa.docx",
        source="console",
        state="pending",
        size_bytes=48_200,
        created=now - 40,
    )


def test_usage_screenshot(browser: Browser, demo: Served) -> None:
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        pytest.skip("UPDATE_SCREENSHOTS=1 writes docs/screenshots/")
    demo.run(demo_usage(demo))
    add_maria(browser, demo)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tall: ViewportSize = {"width": DESKTOP["width"], "height": 1560}  # the charts, the table's top
    tab = open_tab(browser, demo.url, tall, timezone="America/Sao_Paulo")
    sign_in(tab, "maria", MARIA_PASSWORD)
    tab.page.get_by_role("link", name="Usage").click()
    expect(tab.page.locator('[data-chart="cost"] canvas')).to_be_visible()
    tab.page.screenshot(path=str(SCREENSHOTS / "console-usage.png"))
    tab.page.context.close()


async def demo_usage(served: Served) -> None:
    """A month of the bakery's figures (busier on Fridays and Saturdays), priced at the default
    prices; its own budget ($0.50) partly used today."""
    today = dt.datetime.now(dt.UTC).date()
    for days_ago in range(30):
        weekday = (today.weekday() - days_ago) % 7
        messages = 28 + (days_ago * 7) % 19 + (22 if weekday in (4, 5) else 0)
        handoffs = 2 if days_ago % 4 == 0 else days_ago % 3 % 2
        answers = messages - handoffs - days_ago % 2
        prompt, output, tts = messages * 1_150, answers * 240, (days_ago % 5) * 1_400
        cost = (prompt * 0.5 + output * 3.0 + tts * 10.0) / 1_000_000
        await add_day(
            served.store.usage,
            days_ago,
            number_id(0),
            messages=messages,
            answers=answers,
            handoffs=handoffs,
            prompt_tokens=prompt,
            output_tokens=output,
            tts_tokens=tts,
            cost_usd=round(cost, 6),
        )
