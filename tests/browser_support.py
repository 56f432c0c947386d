"""The console's browser tests' fixtures and tabs: Debian's Chromium through Playwright (never a
downloaded browser), the app served by a real uvicorn over an SQLite file, a tab that records
dialogs and errors. A plugin of tests/conftest.py, so its fixtures are found by name."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from console_apps import ADMIN_PASSWORD, Served, served_console
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Error,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from respx_upstreams import FakeUpstreams

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(name="browser", scope="module")
def browser_fixture() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium (Playwright never downloads one)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    """A page, with what it reported: dialogs opened and errors (a CSP violation is one)."""

    page: Page
    url: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_tab(
    browser: Browser,
    url: str,
    viewport: ViewportSize,
    timezone: str = "UTC",
    *,
    accept_dialogs: bool = False,
    locale: str = "en-GB",
) -> Tab:
    """A tab on the service at `url` that records dialogs (dismissed, or accepted with
    `accept_dialogs`) and errors; the browser's language is `locale` (its Accept-Language)."""
    context = browser.new_context(viewport=viewport, timezone_id=timezone, locale=locale)
    page = context.new_page()
    tab = Tab(page, url)

    def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(dialog.message)
        if accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":  # a Content-Security-Policy violation is one
            tab.errors.append(message.text)

    def on_page_error(error: Error) -> None:
        tab.errors.append(str(error))

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return tab


def sign_in(tab: Tab, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page = tab.page
    page.goto(f"{tab.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()


def mark(page: Page) -> None:
    """A flag that a reload would wipe out."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


@pytest.fixture(name="served")
def served_fixture(tmp_path: Path, fakes: FakeUpstreams) -> Iterator[Served]:
    """The app with the console behind uvicorn, over an SQLite file, one business: a bakery."""
    database_url = f"sqlite:///{tmp_path}/browser.db"
    with served_console(database_url, fakes, businesses=["Padaria Central"]) as running:
        yield running
