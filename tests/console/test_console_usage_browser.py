"""The Usage page in a real browser (Debian's Chromium through Playwright, a real uvicorn): opened
from the header, its three charts drawn by the vendored uPlot under the console's CSP, the table
with today's row; on a phone nothing overflows; without JavaScript the table alone is there."""

from __future__ import annotations

import re

import pytest
from browser_support import (  # the fixtures are used by name
    DESKTOP,
    PHONE,
    Tab,
    browser_fixture,  # noqa: F401
    data_fixture,  # noqa: F401
    open_tab,
    served_fixture,  # noqa: F401
    sign_in,
)
from console.usage_data import ALL_BUSINESSES
from console_support import ADMIN_PASSWORD, Served
from memory_usage import MemoryUsageData
from playwright.sync_api import Browser, Page, expect


@pytest.fixture(name="usage")
def usage_fixture(served: Served) -> MemoryUsageData:
    """The served app's figures, set on the app the way the lifespan would."""
    usage = MemoryUsageData()
    usage.set_day(
        0,
        messages=14,
        answers=13,
        handoffs=1,
        prompt_tokens=21_500,
        output_tokens=3_210,
        tts_tokens=640,
        searches=1,
        cost_usd=0.0321,
    )
    for days_ago in range(1, 12):
        usage.set_day(days_ago, messages=days_ago, answers=days_ago, cost_usd=days_ago / 100)
    usage.set_budget(ALL_BUSINESSES, 5.0, 1.23)
    served.app.state.usage_data = usage
    return usage


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


def test_the_charts_are_drawn_and_the_table_shows_today(
    browser: Browser, served: Served, usage: MemoryUsageData
) -> None:
    tab = open_tab(browser, served, DESKTOP)
    page = open_usage(tab)
    expect(page).to_have_url(re.compile(r"/console/usage$"))
    expect(page.locator("#usage-charts")).to_be_visible()
    for width, height in canvases(page):
        assert width > 300 and height > 100
    today = page.get_by_role("row", name=re.compile(re.escape(f"{usage.today()} (today)")))
    expect(today).to_have_text(re.compile(r"14\s*13\s*1\s*21,500\s*3,210\s*640\s*1\s*\$0\.0321"))
    expect(page.get_by_text("Today: $1.23 of $5.00 (25%)")).to_be_visible()
    expect(page.locator(".u-legend").first).to_contain_text("Messages")
    assert tab.errors == [] and tab.dialogs == []


def test_on_a_phone_the_charts_fit(
    browser: Browser, served: Served, usage: MemoryUsageData
) -> None:
    tab = open_tab(browser, served, PHONE, timezone="America/Sao_Paulo")
    page = open_usage(tab)
    for width, height in canvases(page):
        assert 200 < width <= PHONE["width"] and height > 100
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert tab.errors == []


def test_without_javascript_the_table_carries_everything(
    browser: Browser, served: Served, usage: MemoryUsageData
) -> None:
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{served.url}/console/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Usage").click()
    expect(page.locator("#usage-charts")).to_be_hidden()
    expect(page.locator("canvas")).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(30)
    expect(page.get_by_role("row", name=re.compile("Total"))).to_contain_text("$0.6921")
    context.close()
