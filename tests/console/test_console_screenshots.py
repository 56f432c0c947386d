"""The admin adds an operator in the browser, and the docs' screenshots are taken as that
operator (UPDATE_SCREENSHOTS=1 writes docs/screenshots/; other runs leave them alone; `-k usage`
writes the Usage page's alone)."""

from __future__ import annotations

import os

import pytest
from browser_support import (  # the fixtures are used by name
    DESKTOP,
    PHONE,
    browser_fixture,  # noqa: F401
    data_fixture,  # noqa: F401
    open_tab,
    served_fixture,  # noqa: F401
    sign_in,
)
from console.data import ConversationState
from console.usage_data import ALL_BUSINESSES
from console_support import Served
from helpers import ROOT
from memory_data import MemoryConsoleData
from memory_knowledge import MemoryKnowledgeData
from memory_usage import MemoryUsageData
from playwright.sync_api import Browser, ViewportSize, expect

from documents.sync import MAX_FILE_BYTES

SCREENSHOTS = ROOT / "docs" / "screenshots"


def demo_data(data: MemoryConsoleData) -> int:
    now = data.clock()
    people = [
        ("Joana Ribeiro", "5511987650001", ConversationState.ASSISTANT, None, 46 * 60),
        ("Carlos Mendes", "5521912340002", ConversationState.WAITING, None, 17 * 60),
        ("", "5531955550003", ConversationState.ASSISTANT, None, 3 * 3600),
        ("Lucía Fernández", "5491144440004", ConversationState.ASSISTANT, None, 26 * 3600),
    ]
    texts = {
        "Joana Ribeiro": "Vocês abrem no domingo?",
        "Carlos Mendes": "Posso falar com alguém sobre uma encomenda grande?",
        "": "Quanto custa o bolo de cenoura?",
        "Lucía Fernández": "¿Hacen envíos a domicilio?",
    }
    for name, number, state, operator, ago in people:
        conversation = data.add_conversation(name=name, number=number, at=now - ago)
        data.add_entry(conversation, "user", texts[name], at=now - ago)
        data.set_state(conversation, state, operator)
    rafa = data.add_conversation(name="Rafael Costa", number="5511934560005", at=now - 420)
    data.add_entry(rafa, "user", "Oi! Vocês fazem bolo sem glúten?", at=now - 420)
    answer = (
        "Fazemos sim! O bolo de chocolate e o de laranja têm versão sem glúten, "
        "com encomenda de 48 horas."
    )
    data.add_entry(rafa, "assistant", answer, at=now - 415, sources=("Cardápio 2026.pdf",))
    asked = "Quero encomendar um para sábado, mas prefiro falar com uma pessoa"
    data.add_entry(rafa, "user", asked, at=now - 300)
    data.add_entry(rafa, "event", "Asked for a person", at=now - 299)
    data.add_entry(rafa, "event", "Taken over", at=now - 120, operator="maria")
    greeting = "Olá Rafael, aqui é a Maria! Para quantas pessoas seria?"
    data.add_entry(rafa, "operator", greeting, at=now - 110, operator="maria")
    data.add_entry(rafa, "user", "Umas 15 pessoas. Dá para escrever 'Parabéns Lia'?", at=now - 40)
    data.set_state(rafa, ConversationState.OPERATOR, "maria")
    return rafa


def test_the_admin_adds_an_operator_who_then_signs_in(browser: Browser, served: Served) -> None:
    add_maria(browser, served)
    tab = open_tab(browser, served, PHONE)
    sign_in(tab, "maria", MARIA_PASSWORD)
    expect(tab.page.get_by_role("link", name="Operators")).to_have_count(0)


MARIA_PASSWORD = "maria-bakery-2026"


def add_maria(browser: Browser, served: Served) -> None:
    """The admin adds the operator `maria` on the Operators page, serving the one business."""
    tab = open_tab(browser, served, DESKTOP)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Operators").click()
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password", exact=True).fill(MARIA_PASSWORD)
    expect(page.get_by_label("Padaria Central")).to_be_checked()
    page.get_by_role("button", name="Add operator").click()
    expect(page.get_by_text("Added maria.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.context.close()


def test_screenshots(browser: Browser, served: Served, data: MemoryConsoleData) -> None:
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        pytest.skip("UPDATE_SCREENSHOTS=1 writes docs/screenshots/")
    rafa = demo_data(data)
    add_maria(browser, served)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        tab = open_tab(browser, served, viewport, timezone="America/Sao_Paulo")
        sign_in(tab, "maria", MARIA_PASSWORD)
        tab.page.screenshot(path=str(SCREENSHOTS / f"console-list{suffix}.png"))
        tab.page.goto(f"{tab.url}/console/conversations/{rafa}")
        tab.page.get_by_label("Reply").fill("Claro! Escrevemos sim.")
        tab.page.screenshot(path=str(SCREENSHOTS / f"console-conversation{suffix}.png"))
        tab.page.context.close()
    served.app.state.knowledge_data = demo_knowledge(data.clock())
    tab = open_tab(browser, served, DESKTOP, timezone="America/Sao_Paulo")
    sign_in(tab, "maria", MARIA_PASSWORD)
    tab.page.get_by_role("link", name="Knowledge").click()
    tab.page.screenshot(path=str(SCREENSHOTS / "console-knowledge.png"))
    tab.page.context.close()


def demo_knowledge(now: float) -> MemoryKnowledgeData:
    """The bakery's documents: two from the folder, one uploaded here still processing."""
    knowledge = MemoryKnowledgeData(max_bytes=MAX_FILE_BYTES)
    day = 24 * 3600
    knowledge.add_document("Cardápio 2026.pdf", size_bytes=2_417_000, created=now - 12 * day)
    knowledge.add_document("Horários e feriados.md", size_bytes=3_100, created=now - 12 * day)
    knowledge.add_document(
        "Encomendas de festa.docx",
        source="console",
        state="pending",
        size_bytes=48_200,
        created=now - 40,
    )
    return knowledge


def test_usage_screenshot(browser: Browser, served: Served) -> None:
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        pytest.skip("UPDATE_SCREENSHOTS=1 writes docs/screenshots/")
    served.app.state.usage_data = demo_usage()
    add_maria(browser, served)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tall: ViewportSize = {"width": DESKTOP["width"], "height": 1560}  # the charts, the table's top
    tab = open_tab(browser, served, tall, timezone="America/Sao_Paulo")
    sign_in(tab, "maria", MARIA_PASSWORD)
    tab.page.get_by_role("link", name="Usage").click()
    expect(tab.page.locator('[data-chart="cost"] canvas')).to_be_visible()
    tab.page.screenshot(path=str(SCREENSHOTS / "console-usage.png"))
    tab.page.context.close()


def demo_usage() -> MemoryUsageData:
    """A month of the bakery's figures (busier on Fridays and Saturdays), priced at the default
    prices; its own budget partly used today."""
    usage = MemoryUsageData()
    for days_ago in range(30):
        weekday = (usage.today().weekday() - days_ago) % 7
        messages = 28 + (days_ago * 7) % 19 + (22 if weekday in (4, 5) else 0)
        handoffs = 2 if days_ago % 4 == 0 else days_ago % 3 % 2
        answers = messages - handoffs - days_ago % 2
        prompt, output, tts = messages * 1_150, answers * 240, (days_ago % 5) * 1_400
        cost = (prompt * 0.5 + output * 3.0 + tts * 10.0) / 1_000_000
        usage.set_day(
            days_ago,
            messages=messages,
            answers=answers,
            handoffs=handoffs,
            prompt_tokens=prompt,
            output_tokens=output,
            tts_tokens=tts,
            cost_usd=round(cost, 6),
        )
    usage.set_budget(ALL_BUSINESSES, None, 0.0)
    usage.set_budget("Padaria Central", 0.5, 0.12)
    usage.token_limit = 40_000
    return usage
