"""The Knowledge page in a real browser (Debian's Chromium through Playwright, a real uvicorn,
the fake File Search): open it from the header, upload a document through the file input, watch
it become Ready, delete it; a file over the limit is refused before it is sent."""

from __future__ import annotations

import re

import pytest
from browser_support import DESKTOP, PHONE, mark, not_reloaded, open_tab, sign_in
from console_apps import Served
from knowledge_support import (
    SMALL_LIMIT,
    Uploaded,
    add_document,
    set_state,
    titles,
    upload_requests,
    uploaded,
)
from playwright.sync_api import Browser, FilePayload, expect

LIVE_MS = 8000  # the table asks every 5 seconds while a document is processing
NOTES = b"We open every day from 7 to 19, Sundays until 13.\n"


@pytest.fixture(name="knowledge")
def knowledge_fixture(served: Served) -> Served:
    """The served app with a small upload limit, its uploads processed once a test says so."""
    served.state.max_upload_bytes = SMALL_LIMIT
    served.fakes.file_search.polls_until_done = 1_000_000
    return served


def finish_processing(served: Served, title: str) -> None:
    """Gemini is done with the document: Ready in the list, done for the library's next poll."""
    served.run(set_state(served, title, "active"))
    for operation in served.fakes.file_search.operations.values():
        operation.polls_left = 0


def test_upload_see_it_ready_and_delete_it(browser: Browser, knowledge: Served) -> None:
    tab = open_tab(browser, knowledge.url, DESKTOP, accept_dialogs=True)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Knowledge").click()
    expect(page.get_by_role("heading", name="Knowledge")).to_be_visible()
    expect(page.get_by_text("No documents yet.")).to_be_visible()

    document: FilePayload = {"name": "opening-hours.txt", "mimeType": "text/plain", "buffer": NOTES}
    page.get_by_label("Document").set_input_files(document)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Uploaded opening-hours.txt.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("opening-hours.txt"))
    expect(row).to_contain_text("Uploaded here")
    expect(row).to_contain_text("Processing")

    mark(page)
    finish_processing(knowledge, "opening-hours.txt")
    expect(row).to_contain_text("Ready", timeout=LIVE_MS)
    assert not_reloaded(page)
    assert knowledge.run(uploaded(knowledge)) == [
        Uploaded("Padaria Central", "opening-hours.txt", NOTES, "text/plain")
    ]

    row.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted opening-hours.txt.")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("opening-hours.txt"))).to_have_count(0)
    expect(page.get_by_text("No documents yet.")).to_be_visible()
    assert tab.dialogs == ["Delete opening-hours.txt?"]
    assert knowledge.run(titles(knowledge)) == []
    assert tab.errors == []


def test_a_file_over_the_limit_is_refused_before_it_is_sent(
    browser: Browser, knowledge: Served
) -> None:
    tab = open_tab(browser, knowledge.url, PHONE, accept_dialogs=True)
    page = tab.page
    sign_in(tab)
    page.goto(f"{tab.url}/console/knowledge")
    big: FilePayload = {"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * 1001}
    field = page.get_by_label("Document")
    field.set_input_files(big)
    page.get_by_role("button", name="Upload").click()
    message = field.evaluate("input => input.validationMessage")
    assert "larger than 1 KB" in message
    expect(page).to_have_url(re.compile(r"/console/knowledge$"))
    assert upload_requests(knowledge.fakes) == []
    assert tab.errors == []


def test_on_a_phone_the_documents_fit_and_the_folder_note_shows(
    browser: Browser, knowledge: Served
) -> None:
    long_title = "Cardápio 2026 com preços e horários de verão.pdf"
    knowledge.run(add_document(knowledge, long_title, size_bytes=2_400_000))
    knowledge.run(
        add_document(
            knowledge,
            "encomendas.csv",
            source="console",
            state="pending",
            size_bytes=5300,
        )
    )
    tab = open_tab(browser, knowledge.url, PHONE, accept_dialogs=True)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Knowledge").click()
    expect(page.get_by_text("the next sync uploads them again")).to_be_visible()
    for name in ("Upload", "Delete encomendas.csv", "Sign out"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["height"] >= 44, name
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert tab.errors == [] and tab.dialogs == []
