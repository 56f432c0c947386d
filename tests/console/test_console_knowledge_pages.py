"""The Knowledge page over the library and the (fake) Gemini File Search: who sees which
business's documents, the table, deleting, the reason when Google cannot be reached, titles
shown as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

import pytest
from console_support import assert_console_headers, operator_client, visible_text
from knowledge_support import (
    BAKERY,
    DELETE,
    PAGE,
    UPLOAD,
    add_document,
    deleted,
    knowledge_console,
    set_state,
    store_name,
    titles,
    uploaded,
)
from respx_upstreams import FakeUpstreams

LIVE = "/console/live/knowledge"
GARAGE = "Oficina Rápida"
PAYLOAD = '<img src=x onerror="window.__xss=1">menu.pdf'


async def test_signed_out_nothing_is_shown_or_handed_on(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        document = await add_document(console, "secret-prices.pdf")
        await console.client.post("/console/logout")
        for path in (PAGE, LIVE, f"{PAGE}?business={BAKERY}"):
            response = await console.client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/console/login")
            assert response.text == ""
            assert_console_headers(response)
        files = {"document": ("a.txt", b"hello", "text/plain")}
        upload = await console.client.post(UPLOAD, files=files)
        delete = await console.client.post(DELETE, data={"business": BAKERY, "document": document})
        for response in (upload, delete):
            assert response.status_code == 303
            assert response.headers["location"] == "/console/login"
        assert await uploaded(console) == [] and deleted(fakes) == []
        assert await titles(console) == ["secret-prices.pdf"]


async def test_an_operator_sees_only_the_business_they_serve(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes, businesses=(BAKERY, GARAGE)) as console:
        await add_document(console, "bakery-menu.pdf", business=BAKERY)
        garage = await add_document(console, "garage-prices.pdf", business=GARAGE)
        admin_page = visible_text((await console.client.get(f"{PAGE}?business={GARAGE}")).text)
        assert "garage-prices.pdf" in admin_page and "bakery-menu.pdf" not in admin_page
        assert (await console.client.get(PAGE)).text.count(
            'href="/console/knowledge?business='
        ) == 2
        async with operator_client(console, "maria", [BAKERY]) as maria:
            page = await maria.get(PAGE)
            assert "bakery-menu.pdf" in page.text and "garage-prices.pdf" not in page.text
            assert GARAGE not in page.text  # no chooser: one business
            assert '<a href="/console/knowledge" aria-current="page">Knowledge</a>' in page.text
            for path in (
                f"{PAGE}?business={GARAGE}",
                f"{LIVE}?business={GARAGE}",
                f"{PAGE}?business=x",
            ):
                response = await maria.get(path)
                assert response.status_code == 404, path
                assert "garage-prices.pdf" not in response.text
            files = {"document": ("a.txt", b"hello", "text/plain")}
            upload = await maria.post(UPLOAD, params={"business": GARAGE}, files=files)
            assert upload.status_code == 404
            theirs = {"business": GARAGE, "document": garage}
            assert (await maria.post(DELETE, data=theirs)).status_code == 404
            mine_but_theirs = {"business": BAKERY, "document": garage}
            response = await maria.post(DELETE, data=mine_but_theirs)
            shown = visible_text((await maria.get(response.headers["location"])).text)
            assert "Not deleted: that document is not there." in shown
            ok = await maria.post(UPLOAD, files=files)  # her one business, unnamed
            assert ok.headers["location"] == f"{PAGE}?business=Padaria+Central"
        assert [u.business for u in await uploaded(console)] == [BAKERY]
        assert deleted(fakes) == []
        assert await titles(console, GARAGE) == ["garage-prices.pdf"]


async def test_the_table_says_source_state_size_and_when(
    database_url: str, fakes: FakeUpstreams
) -> None:
    added = 1_780_000_000.0
    async with knowledge_console(database_url, fakes) as console:
        await add_document(console, "menu.pdf", size_bytes=1_500_000, created=added)
        await add_document(console, "prices.csv", source="console", state="pending", size_bytes=12)
        await add_document(console, "broken.docx", source="console", state="failed", undated=True)
        html = (await console.client.get(PAGE)).text
        live = (await console.client.get(LIVE)).text
        await set_state(console, "prices.csv", "active")
        settled = (await console.client.get(LIVE)).text
    rows = [
        visible_text(r).strip() for r in re.findall(r"<tr class=\"document.*?</tr>", html, re.S)
    ]
    assert rows[0].startswith("broken.docx Uploaded here Failed 1.2 KB Unknown Delete")
    assert rows[1].startswith("menu.pdf From the folder Ready 1.5 MB")
    assert rows[2].startswith("prices.csv Uploaded here Processing 12 bytes")
    stamp = datetime.fromtimestamp(added, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time datetime="{stamp}">' in html
    assert "the next sync uploads them again while their file is in the folder" in html
    assert 'data-live="/console/live/knowledge?business=Padaria+Central"' in html
    assert "<html" not in live and "prices.csv" in live and "data-live-stop" not in live
    assert "data-live-stop" in settled  # nothing processing: the page stops asking
    form = re.search(r"<form method=\"post\" action=\"(.*?)\" enctype=\"(.*?)\"", html)
    assert form is not None
    assert form.groups() == (
        "/console/knowledge/upload?business=Padaria+Central",
        "multipart/form-data",
    )
    assert '<label for="document">Document</label>' in html
    assert 'accept=".csv,.docx,.htm,.html,.json,.log,.markdown,.md,.pdf,' in html
    assert 'data-max-bytes="1000"' in html and "Up to 1 KB, one of: .csv, .docx," in html
    assert '<button type="submit" class="primary">Upload</button>' in html
    assert html.count(">Delete</button>") == 3


async def test_without_processing_documents_the_page_does_not_poll(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        await add_document(console, "menu.pdf")
        html = (await console.client.get(PAGE)).text
    assert "data-live=" not in html
    assert "the next sync" in html  # a folder document: the note is there


@pytest.mark.parametrize(
    ("source", "note"),
    [("folder", True), ("console", False)],
)
async def test_delete(
    database_url: str, fakes: FakeUpstreams, source: Literal["folder", "console"], note: bool
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        kept = await add_document(console, "kept.pdf")
        gone = await add_document(console, "old-menu.pdf", source=source)
        client = console.client
        response = await client.post(DELETE, data={"business": BAKERY, "document": gone})
        assert response.status_code == 303
        assert response.headers["location"] == f"{PAGE}?business=Padaria+Central"
        page = visible_text((await client.get(response.headers["location"])).text)
        again = await client.post(DELETE, data={"business": BAKERY, "document": gone})
        page_again = visible_text((await client.get(again.headers["location"])).text)
        nameless = await client.post(DELETE, data={"document": kept})
        left = await titles(console)
    assert "Deleted old-menu.pdf." in page
    assert ("The next sync uploads it again while its file is in the folder." in page) is note
    assert "old-menu.pdf From" not in page and "kept.pdf From the folder" in page
    assert "Not deleted: that document is not there." in page_again
    assert nameless.status_code == 404
    assert deleted(fakes) == [gone]
    assert left == ["kept.pdf"]


async def test_a_cross_site_delete_is_403_and_deletes_nothing(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        document = await add_document(console, "menu.pdf")
        response = await console.client.post(
            DELETE,
            data={"business": BAKERY, "document": document},
            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        )
        left = await titles(console)
    assert response.status_code == 403
    assert deleted(fakes) == [] and left == ["menu.pdf"]


async def test_when_google_cannot_be_reached_the_page_says_so(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        document = await add_document(console, "menu.pdf")
        fakes.file_search.fail_next("GET", "/documents", status=503, times=100)
        page = await console.client.get(PAGE)
        response = await console.client.post(
            DELETE, data={"business": BAKERY, "document": document}
        )
        after = visible_text((await console.client.get(response.headers["location"])).text)
        fakes.file_search.clear_failures()
        left = await titles(console)
    assert page.status_code == 200
    text = visible_text(page.text)
    reason = "could not list the documents: Gemini API error 503 UNAVAILABLE: injected failure"
    assert (
        f"The documents cannot be listed now. Gemini File Search could not be reached: {reason}"
        in text
    )
    assert "Upload" in text  # the form is still there
    assert f"Not deleted. Gemini File Search refused: {reason}" in after
    assert deleted(fakes) == [] and left == ["menu.pdf"]


async def test_titles_with_markup_are_shown_as_text(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        await add_document(console, PAYLOAD, state="pending")
        await add_document(console, "<script>window.__xss = 1</script>.txt", source="console")
        pages = [(await console.client.get(path)).text for path in (PAGE, LIVE)]
    for html in pages:
        assert "<img src=x" not in html and "<script>window" not in html
        assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;menu.pdf" in html
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;.txt" in html


async def test_an_upload_is_listed_and_answers_search_it(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """The real size limit, and an upload that makes the business's store searchable."""
    async with knowledge_console(database_url, fakes, max_bytes=100_000_000) as console:
        before = visible_text((await console.client.get(PAGE)).text)
        files = {"document": ("hours.txt", b"Open 6:00 to 20:00", "text/plain")}
        response = await console.client.post(UPLOAD, files=files)
        assert response.status_code == 303
        [document] = await uploaded(console)
        after = visible_text((await console.client.get(PAGE)).text)
        searchable = await console.store.knowledge.searchable(
            next(iter(console.state.settings.businesses)).phone_number_id
        )
        registered = await store_name(console)
    assert "No documents yet." in before and "Up to 100 MB" in before
    assert "hours.txt" in after and "Uploaded here" in after
    assert (document.filename, document.data) == ("hours.txt", b"Open 6:00 to 20:00")
    assert searchable is not None and searchable == registered
    [stored] = fakes.file_search.documents(searchable)
    assert (stored.display_name, stored.metadata["source"]) == ("hours.txt", "console")


async def test_an_operator_serving_no_business_gets_no_form(
    database_url: str, fakes: FakeUpstreams
) -> None:
    files = {"document": ("a.txt", b"hello", "text/plain")}
    async with knowledge_console(database_url, fakes) as console:
        await add_document(console, "menu.pdf")
        async with operator_client(console, "joao", []) as joao:
            page = await joao.get(PAGE)
            live = await joao.get(LIVE)
            upload = await joao.post(UPLOAD, files=files)
        nothing = await uploaded(console)
    assert page.status_code == 200
    assert "You serve no business with documents." in page.text
    assert "menu.pdf" not in page.text and 'type="file"' not in page.text
    assert live.status_code == 404 and upload.status_code == 404
    assert nothing == []
