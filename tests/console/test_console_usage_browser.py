"""The Usage page in a real browser (Debian's Chromium through Playwright, a real uvicorn over an
SQLite file): opened from the header, its three charts drawn by the vendored uPlot under the
console's CSP, the table with today's row; on a phone nothing overflows; without JavaScript the
table alone is there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_support import DESKTOP, PHONE, Tab, open_tab, sign_in
from console_apps import ADMIN_PASSWORD, Served, number_id, served_console
from playwright.sync_api import Browser, Page, expect
from respx_upstreams import FakeUpstreams
from usage_support import add_day

from console.languages import ENGLISH


async def figures(served: Served) -> None:
    """Today's figures, and each of the eleven days before it."""
    usage = served.store.usage
    await add_day(
        usage,
        0,
        number_id(0),
        messages=14,
        answers=13,
        handoffs=1,
        prompt_tokens=21_500,
        output_tokens=3_210,
        tts_tokens=640,
        searches=1,
        cost_usd=1.23,
    )
    for ago in range(1, 12):
        await add_day(usage, ago, number_id(0), messages=ago, answers=ago, cost_usd=ago / 100)


@pytest.fixture(name="usage")
def usage_fixture(tmp_path: Path, fakes: FakeUpstreams) -> Iterator[Served]:
    """The app behind uvicorn with twelve days of figures in its store, a daily budget of $5."""
    database_url = f"sqlite:///{tmp_path}/usage.db"
    with served_console(
        database_url, fakes, businesses=["Padaria Central"], daily_budget_usd=5.0
    ) as served:
        served.run(figures(served))
        yield served


def canvases(page: Page) -> list[tuple[float, float]]:
    """Each chart's drawing: (width, height) of the canvas uPlot made in it."""
    sizes: list[tuple[float, float]] = []
    for name in ("activity", "tokens", "cost"):
        canvas = page.locator(f'[data-chart="{name}"] canvas')
        expect(canvas).to_have_count(1)
        box = canvas.bounding_box()
        assert box is not None, name
        sizes.append((box["width"], box["height"]))
    return sizes


def open_usage(tab: Tab) -> Page:
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    return page


def test_the_charts_are_drawn_and_the_table_shows_today(browser: Browser, usage: Served) -> None:
    tab = open_tab(browser, usage.url, DESKTOP)
    page = open_usage(tab)
    expect(page).to_have_url(re.compile(r"/console/usage$"))
    expect(page.locator("#usage-charts")).to_be_visible()
    for width, height in canvases(page):
        assert width > 300 and height > 100
    day = ENGLISH.day(datetime.now(UTC).date().isoformat())
    today = page.get_by_role("row", name=re.compile(re.escape(f"{day} (today)")))
    expect(today).to_have_text(
        re.compile(r"14\s*13\s*1\s*21,500\s*3,210\s*640\s*0\s*1\s*\$1\.2300")
    )
    expect(page.get_by_text("Today: $1.23 of $5.00 (25%)")).to_be_visible()
    expect(page.locator(".u-legend").first).to_contain_text("Messages")
    assert tab.errors == [] and tab.dialogs == []


def test_on_a_phone_the_charts_fit(browser: Browser, usage: Served) -> None:
    tab = open_tab(browser, usage.url, PHONE, timezone="America/Sao_Paulo")
    page = open_usage(tab)
    for width, height in canvases(page):
        assert 200 < width <= PHONE["width"] and height > 100
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert tab.errors == []


def test_without_javascript_the_table_carries_everything(browser: Browser, usage: Served) -> None:
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{usage.url}/console/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Usage").click()
    expect(page.locator("#usage-charts")).to_be_hidden()
    expect(page.locator("canvas")).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(30)
    expect(page.get_by_role("row", name=re.compile("Total"))).to_contain_text("$1.8900")
    context.close()
