"""The Knowledge page: who sees which business's documents, the table, deleting, the reason
when Google cannot be reached, titles shown as text, and the page without File Search."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from console_support import (
    ADMIN_PASSWORD,
    assert_console_headers,
    cheap_passwords,
    console_settings,
    signed_in,
    visible_text,
)
from helpers import PHONE_NUMBER_ID, FakeUpstreams
from knowledge_support import DELETE, PAGE, UPLOAD, knowledge_console, operator_client
from memory_data import MemoryConsoleData
from memory_knowledge import MemoryKnowledgeData

from main import create_app

LIVE = "/console/live/knowledge"
BAKERY, GARAGE = "Padaria Central", "Oficina Rápida"
PAYLOAD = '<img src=x onerror="window.__xss=1">menu.pdf'


async def test_signed_out_nothing_is_shown_or_handed_on(database_url: str) -> None:
    knowledge = MemoryKnowledgeData()
    document = knowledge.add_document("secret-prices.pdf")
    async with knowledge_console(database_url, knowledge) as console:
        await console.client.post("/console/logout")
        for path in (PAGE, LIVE, f"{PAGE}?business={BAKERY}"):
            response = await console.client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/console/login")
            assert response.text == ""
            assert_console_headers(response)
        files = {"document": ("a.txt", b"hello", "text/plain")}
        upload = await console.client.post(UPLOAD, files=files)
        delete = await console.client.post(
            DELETE, data={"business": BAKERY, "document": document.name}
        )
        for response in (upload, delete):
            assert response.status_code == 303
            assert response.headers["location"] == "/console/login"
    assert knowledge.uploads == [] and knowledge.deleted == []
    assert knowledge.titles() == ["secret-prices.pdf"]


async def test_an_operator_sees_only_the_business_they_serve(database_url: str) -> None:
    knowledge = MemoryKnowledgeData((BAKERY, GARAGE))
    knowledge.add_document("bakery-menu.pdf", business=BAKERY)
    garage = knowledge.add_document("garage-prices.pdf", business=GARAGE)
    async with knowledge_console(database_url, knowledge) as console:
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
            theirs = {"business": GARAGE, "document": garage.name}
            assert (await maria.post(DELETE, data=theirs)).status_code == 404
            mine_but_theirs = {"business": BAKERY, "document": garage.name}
            response = await maria.post(DELETE, data=mine_but_theirs)
            shown = visible_text((await maria.get(response.headers["location"])).text)
            assert "Not deleted: that document is not there." in shown
            ok = await maria.post(UPLOAD, files=files)  # her one business, unnamed
            assert ok.headers["location"] == f"{PAGE}?business=Padaria+Central"
    assert [u.business for u in knowledge.uploads] == [BAKERY]
    assert knowledge.deleted == []
    assert knowledge.titles(GARAGE) == ["garage-prices.pdf"]


async def test_the_table_says_source_state_size_and_when(database_url: str) -> None:
    knowledge = MemoryKnowledgeData()
    added = 1_780_000_000.0
    knowledge.add_document("menu.pdf", size_bytes=1_500_000, created=added)
    knowledge.add_document("prices.csv", source="console", state="pending", size_bytes=12)
    knowledge.add_document("broken.docx", source="console", state="failed", undated=True)
    async with knowledge_console(database_url, knowledge) as console:
        html = (await console.client.get(PAGE)).text
        live = (await console.client.get(LIVE)).text
        knowledge.set_state("prices.csv", "active")
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


async def test_without_processing_documents_the_page_does_not_poll(database_url: str) -> None:
    knowledge = MemoryKnowledgeData()
    knowledge.add_document("menu.pdf")
    async with knowledge_console(database_url, knowledge) as console:
        html = (await console.client.get(PAGE)).text
    assert "data-live=" not in html
    assert "the next sync" in html  # a folder document: the note is there


@pytest.mark.parametrize(
    ("source", "note"),
    [("folder", True), ("console", False)],
)
async def test_delete(database_url: str, source: str, note: bool) -> None:
    knowledge = MemoryKnowledgeData()
    kept = knowledge.add_document("kept.pdf")
    gone = knowledge.add_document(
        "old-menu.pdf", source="folder" if source == "folder" else "console"
    )
    async with knowledge_console(database_url, knowledge) as console:
        client = console.client
        response = await client.post(DELETE, data={"business": BAKERY, "document": gone.name})
        assert response.status_code == 303
        assert response.headers["location"] == f"{PAGE}?business=Padaria+Central"
        page = visible_text((await client.get(response.headers["location"])).text)
        again = await client.post(DELETE, data={"business": BAKERY, "document": gone.name})
        page_again = visible_text((await client.get(again.headers["location"])).text)
        nameless = await client.post(DELETE, data={"document": kept.name})
    assert "Deleted old-menu.pdf." in page
    assert ("The next sync uploads it again while its file is in the folder." in page) is note
    assert "old-menu.pdf From" not in page and "kept.pdf From the folder" in page
    assert "Not deleted: that document is not there." in page_again
    assert nameless.status_code == 404
    assert knowledge.deleted == [(BAKERY, gone.name)]


async def test_a_cross_site_delete_is_403_and_deletes_nothing(database_url: str) -> None:
    knowledge = MemoryKnowledgeData()
    document = knowledge.add_document("menu.pdf")
    async with knowledge_console(database_url, knowledge) as console:
        response = await console.client.post(
            DELETE,
            data={"business": BAKERY, "document": document.name},
            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        )
    assert response.status_code == 403
    assert knowledge.deleted == [] and knowledge.titles() == ["menu.pdf"]


async def test_when_google_cannot_be_reached_the_page_says_so(database_url: str) -> None:
    knowledge = MemoryKnowledgeData()
    document = knowledge.add_document("menu.pdf")
    async with knowledge_console(database_url, knowledge) as console:
        knowledge.unreachable = "Google did not answer in time."
        page = await console.client.get(PAGE)
        response = await console.client.post(
            DELETE, data={"business": BAKERY, "document": document.name}
        )
        after = visible_text((await console.client.get(response.headers["location"])).text)
    assert page.status_code == 200
    text = visible_text(page.text)
    assert "The documents cannot be listed now. Google did not answer in time." in text
    assert "Upload" in text  # the form is still there
    assert "Not deleted. Google did not answer in time." in after
    assert knowledge.deleted == []


async def test_titles_with_markup_are_shown_as_text(database_url: str) -> None:
    knowledge = MemoryKnowledgeData()
    knowledge.add_document(PAYLOAD, state="pending")
    knowledge.add_document("<script>window.__xss = 1</script>.txt", source="console")
    async with knowledge_console(database_url, knowledge) as console:
        pages = [(await console.client.get(path)).text for path in (PAGE, LIVE)]
    for html in pages:
        assert "<img src=x" not in html and "<script>window" not in html
        assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;menu.pdf" in html
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;.txt" in html


async def test_over_gemini_file_search_an_upload_is_listed_and_answers_search_it(
    tmp_path: Path, fakes: FakeUpstreams
) -> None:
    """create_app without `knowledge_data`: the lifespan's, over the (fake) File Search."""
    settings = console_settings(f"sqlite:///{tmp_path}/kb.db", knowledge_dir=tmp_path / "none")
    app = create_app(settings, console_data=MemoryConsoleData())
    app.state.console.passwords = cheap_passwords()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await signed_in(client, "admin", ADMIN_PASSWORD)
            before = visible_text((await client.get(PAGE)).text)
            files = {"document": ("hours.txt", b"Open 6:00 to 20:00", "text/plain")}
            response = await client.post(UPLOAD, files=files)
            assert response.status_code == 303
            await app.state.knowledge_data.uploads_done()
            after = visible_text((await client.get(PAGE)).text)
            store = app.state.library  # the store is now searched while answering
            searchable = await app.state.services.store.knowledge.searchable(PHONE_NUMBER_ID)
    assert "No documents yet." in before and "Up to 100 MB" in before
    assert "hours.txt" in after and "Uploaded here" in after
    assert store is not None and searchable is not None
    [document] = fakes.file_search.documents(searchable)
    assert (document.display_name, document.metadata["source"]) == ("hours.txt", "console")


async def test_an_operator_serving_no_business_gets_no_form(database_url: str) -> None:
    knowledge = MemoryKnowledgeData()
    knowledge.add_document("menu.pdf")
    files = {"document": ("a.txt", b"hello", "text/plain")}
    async with (
        knowledge_console(database_url, knowledge) as console,
        operator_client(console, "joao", []) as joao,
    ):
        page = await joao.get(PAGE)
        live = await joao.get(LIVE)
        upload = await joao.post(UPLOAD, files=files)
    assert page.status_code == 200
    assert "You serve no business with documents." in page.text
    assert "menu.pdf" not in page.text and 'type="file"' not in page.text
    assert live.status_code == 404 and upload.status_code == 404
    assert knowledge.uploads == []
