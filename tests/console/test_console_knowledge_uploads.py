"""Uploads on the Knowledge page: what reaches File Search (the MIME type from the table), and
what is refused before anything is (type, size by Content-Length and by the bytes themselves,
forms that are not one document, cross-site POSTs); Google's own refusal, logged."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from console_support import visible_text
from knowledge_support import (
    BOUNDARY,
    PAGE,
    UPLOAD,
    Chunks,
    Uploaded,
    form_body,
    form_headers,
    knowledge_console,
    upload_requests,
    uploaded,
)
from respx_upstreams import FakeUpstreams

from console.knowledge_upload import FORM_BYTES, human_size

BUSINESS_PAGE = f"{PAGE}?business=Padaria+Central"


async def flash_after(client: httpx.AsyncClient, response: httpx.Response) -> str:
    """The page a refused or accepted upload leads back to, as text."""
    assert response.status_code == 303, response.text
    assert response.headers["location"] == BUSINESS_PAGE
    return visible_text((await client.get(response.headers["location"])).text)


async def test_an_allowed_document_is_handed_on_with_the_tables_mime_type(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        client = console.client
        pdf = b"%PDF-1.4 a tiny menu"
        files = {"document": ("C:\\Users\\ana\\Cardápio 2026.PDF", pdf, "application/x-evil")}
        page = await flash_after(client, await client.post(UPLOAD, files=files))
        assert "Uploaded Cardápio 2026.PDF." in page
        notes = b"# Opening hours\n"
        files = {"document": ("hours.md", notes, "text/x-markdown")}
        await client.post(UPLOAD, files=files)
        yaml = b"sundays: closed\n"
        await client.post(UPLOAD, files={"document": ("faq.yaml", yaml, "application/yaml")})
        handed_on = await uploaded(console)
        listed = visible_text((await client.get(PAGE)).text)
    assert handed_on == [
        Uploaded("Padaria Central", "Cardápio 2026.PDF", pdf, "application/pdf"),
        Uploaded("Padaria Central", "hours.md", notes, "text/markdown"),
        Uploaded("Padaria Central", "faq.yaml", yaml, "text/plain"),
    ]
    assert "Cardápio 2026.PDF Uploaded here Ready 20 bytes" in listed


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("setup.exe", ".exe files"),
        ("menu.pdf.exe", ".exe files"),
        ("README", "a file without an extension"),
        ("photo.jpeg", ".jpeg files"),
    ],
)
async def test_a_type_not_in_the_table_never_reaches_upload(
    database_url: str, fakes: FakeUpstreams, filename: str, kind: str
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        files = {"document": (filename, b"MZ\x90\x00", "application/pdf")}  # the browser lies
        page = await flash_after(console.client, await console.client.post(UPLOAD, files=files))
    assert f"Not uploaded: {kind} cannot be read. Upload one of .csv, .docx," in page
    assert upload_requests(fakes) == []


async def test_the_limit_in_literal_bytes(database_url: str, fakes: FakeUpstreams) -> None:
    async with knowledge_console(database_url, fakes) as console:
        client = console.client
        over = await client.post(UPLOAD, files={"document": ("a.txt", b"x" * 1001, "text/plain")})
        assert over.status_code == 413
        assert "Not uploaded: a document can be at most 1 KB." in visible_text(over.text)
        assert 'href="/console/knowledge?business=Padaria+Central"' in over.text
        assert await uploaded(console) == []
        at = await client.post(UPLOAD, files={"document": ("b.txt", b"y" * 1000, "text/plain")})
        assert "Uploaded b.txt." in await flash_after(client, at)
        handed_on = await uploaded(console)
    assert handed_on == [Uploaded("Padaria Central", "b.txt", b"y" * 1000, "text/plain")]


async def test_a_large_content_length_is_refused_before_any_byte_is_read(
    database_url: str, fakes: FakeUpstreams
) -> None:
    body = Chunks(form_body("big.pdf", b"x" * 2000), 100)
    async with knowledge_console(database_url, fakes) as console:
        headers = form_headers(**{"content-length": str(1000 + FORM_BYTES + 1)})
        response = await console.client.post(UPLOAD, content=body, headers=headers)
    assert response.status_code == 413
    assert body.sent == 0
    assert upload_requests(fakes) == []


@pytest.mark.parametrize("length", [None, "300"])  # none, as when chunked; and a false one
async def test_the_bytes_are_counted_whatever_content_length_says(
    database_url: str, fakes: FakeUpstreams, length: str | None
) -> None:
    body = Chunks(form_body("big.txt", b"x" * 5000), 100)
    headers = form_headers(**({"content-length": length} if length else {}))
    async with knowledge_console(database_url, fakes) as console:
        response = await console.client.post(UPLOAD, content=body, headers=headers)
    assert response.status_code == 413
    assert body.sent < len(body.pieces) // 2  # it stopped reading at the limit
    assert upload_requests(fakes) == []


async def test_other_parts_count_towards_the_limit_too(
    database_url: str, fakes: FakeUpstreams
) -> None:
    padding = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="padding"\r\n\r\n'
    junk = padding.encode() + b"j" * (FORM_BYTES + 2000) + b"\r\n"
    body = Chunks(junk + form_body("a.txt", b"hello"), 500)
    async with knowledge_console(database_url, fakes) as console:
        response = await console.client.post(UPLOAD, content=body, headers=form_headers())
    assert response.status_code == 413
    assert upload_requests(fakes) == []


async def test_forms_that_are_not_one_document_are_refused(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        client = console.client

        async def refused(**request: Any) -> str:
            return await flash_after(client, await client.post(UPLOAD, **request))

        no_file = {"document": ("", b"", "application/octet-stream")}
        assert "Choose a document to upload first." in await refused(files=no_file)
        empty = {"document": ("empty.txt", b"", "text/plain")}
        assert "Not uploaded: empty.txt is empty." in await refused(files=empty)
        other = {"attachment": ("a.txt", b"hello", "text/plain")}
        assert "Choose a document to upload first." in await refused(files=other)
        two = [
            ("document", ("a.txt", b"one", "text/plain")),
            ("document", ("b.txt", b"2", "text/plain")),
        ]
        assert "upload one document at a time" in await refused(files=two)
        assert "did not arrive as a form" in await refused(data={"document": "a.txt"})
        cut = form_body("a.txt", b"hello")[:-20]
        assert "cut short" in await refused(content=cut, headers=form_headers())
        broken = b"--" + b"x" * 300 + b"\r\n"
        assert "did not arrive as a form" in await refused(
            content=broken, headers={"content-type": f"multipart/form-data; boundary={'x' * 300}"}
        )
    assert upload_requests(fakes) == []


async def test_googles_refusal_is_logged_with_its_reason_and_lists_nothing(
    database_url: str, fakes: FakeUpstreams, caplog: pytest.LogCaptureFixture
) -> None:
    """Google processes an upload after the page has answered: its refusal goes to the log."""
    caplog.set_level(logging.WARNING)
    fakes.file_search.fail_upload("a.txt", status=429, stage="start")
    async with knowledge_console(database_url, fakes) as console:
        logging.getLogger().addHandler(caplog.handler)  # the app's start-up set its own alone
        files = {"document": ("a.txt", b"hello", "text/plain")}
        page = await flash_after(console.client, await console.client.post(UPLOAD, files=files))
        handed_on = await uploaded(console)
        listed = visible_text((await console.client.get(PAGE)).text)
    assert "Uploaded a.txt." in page
    assert handed_on == [] and "No documents yet." in listed
    assert (
        "a console upload for Padaria Central failed: could not upload: "
        "Gemini API error 429 RESOURCE_EXHAUSTED: upload refused"
    ) in caplog.text
    assert "a.txt" not in caplog.text  # the log never names the file


@pytest.mark.parametrize(
    "headers",
    [{"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}],
)
async def test_a_cross_site_upload_is_403_and_uploads_nothing(
    database_url: str, fakes: FakeUpstreams, headers: dict[str, str]
) -> None:
    async with knowledge_console(database_url, fakes) as console:
        files = {"document": ("a.txt", b"hello", "text/plain")}
        response = await console.client.post(UPLOAD, files=files, headers=headers)
    assert response.status_code == 403
    assert "came from another site" in response.text
    assert upload_requests(fakes) == []


def test_sizes_read_as_a_person_writes_them() -> None:
    assert [human_size(n) for n in (0, 1, 999, 1000, 1500, 999_999, 2_345_678)] == [
        "0 bytes",
        "1 byte",
        "999 bytes",
        "1 KB",
        "1.5 KB",
        "1 MB",
        "2.3 MB",
    ]
    assert human_size(100 * 1000 * 1000) == "100 MB"
    assert human_size(5 * 1000**4) == "5000 GB"
