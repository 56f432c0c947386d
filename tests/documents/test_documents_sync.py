"""Tests for documents/sync.py: the real google-genai client against the fake File Search."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from fake_file_search import FakeFileSearch
from filesearch_support import (
    BASE_URL,
    FAST,
    make_client,
)
from google import genai
from google.genai import types

from documents import sync
from documents.filesearch import KnowledgeError, Polling
from documents.sync import FileResult, SyncReport, ensure_store, synchronise

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def write(folder: Path, path: str, content: bytes) -> Path:
    location = folder / path
    location.parent.mkdir(parents=True, exist_ok=True)
    location.write_bytes(content)
    return location


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def actions(report: SyncReport) -> dict[str, str]:
    return {result.path: result.action for result in report.results}


def by_display_name(file_search: FakeFileSearch, store_name: str) -> dict[str, list[str]]:
    """Display name -> the sha256 metadata of each document of that name."""
    names: dict[str, list[str]] = {}
    for doc in file_search.documents(store_name):
        names.setdefault(doc.display_name, []).append(doc.metadata.get("sha256", ""))
    return names


async def run(
    genai_client: genai.Client, store_name: str, folder: Path, **kwargs: object
) -> SyncReport:
    return await synchronise(genai_client, store_name, folder, polling=FAST, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    write(root, "menu.md", b"# Menu\nPizza 12 EUR\n")
    write(root, "hours.txt", b"Open 9-18, closed on Sundays\n")
    write(root, "policies/returns.pdf", b"%PDF-1.7 returns within 30 days")
    write(root, "policies/warranty.docx", b"PK\x03\x04 two years")
    return root


async def test_first_sync_uploads_everything_with_metadata(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    seen: list[FileResult] = []

    report = await run(genai_client, store_name, folder, progress=seen.append)

    assert actions(report) == {
        "hours.txt": "uploaded",
        "menu.md": "uploaded",
        "policies/returns.pdf": "uploaded",
        "policies/warranty.docx": "uploaded",
    }
    assert (report.uploaded, report.unchanged, report.deleted, report.failed) == (4, 0, 0, 0)
    assert sorted(seen, key=lambda r: r.path) == report.results
    docs = {doc.display_name: doc for doc in file_search.documents(store_name)}
    assert set(docs) == set(actions(report))
    for path, doc in docs.items():
        content = (folder / path).read_bytes()
        assert doc.content == content
        assert doc.metadata == {"sha256": sha(content), "source": "folder"}
        assert doc.state == "STATE_ACTIVE"  # each upload was awaited until processed
    assert docs["menu.md"].mime_type == "text/markdown"
    assert docs["policies/returns.pdf"].mime_type == "application/pdf"
    assert docs["policies/warranty.docx"].mime_type == DOCX
    assert all(op.done and op.polls >= 2 for op in file_search.operations.values())
    assert report.results[0] == FileResult("hours.txt", 29, "uploaded", None)


async def test_resync_uploads_nothing(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    await run(genai_client, store_name, folder)
    calls_before = len(file_search.calls)

    report = await run(genai_client, store_name, folder)

    assert set(actions(report).values()) == {"unchanged"}
    assert report.unchanged == 4
    later = file_search.calls[calls_before:]
    assert [(c.method, c.path) for c in later] == [("GET", f"/v1/{store_name}/documents")]
    assert len(file_search.documents(store_name)) == 4


async def test_changed_file_is_uploaded_before_the_old_one_is_deleted(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    await run(genai_client, store_name, folder)
    old = next(
        doc.name for doc in file_search.documents(store_name) if doc.display_name == "menu.md"
    )
    write(folder, "menu.md", b"# Menu\nPizza 13 EUR\n")
    calls_before = len(file_search.calls)

    report = await run(genai_client, store_name, folder)

    assert actions(report)["menu.md"] == "uploaded"
    assert next(r for r in report.results if r.path == "menu.md").reason == (
        "replaced the previous version"
    )
    assert report.unchanged == 3
    assert by_display_name(file_search, store_name)["menu.md"] == [sha(b"# Menu\nPizza 13 EUR\n")]
    later = file_search.calls[calls_before:]
    finalize = next(i for i, c in enumerate(later) if c.upload_command == "upload, finalize")
    delete = next(i for i, c in enumerate(later) if c.method == "DELETE")
    assert later[delete].path == f"/v1/{old}"
    assert later[delete].query == "force=True"
    assert finalize < delete


async def test_deleted_file_loses_its_document(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    await run(genai_client, store_name, folder)
    (folder / "policies" / "returns.pdf").unlink()

    report = await run(genai_client, store_name, folder)

    assert actions(report)["policies/returns.pdf"] == "deleted"
    assert report.deleted == 1
    assert "policies/returns.pdf" not in by_display_name(file_search, store_name)
    assert len(file_search.documents(store_name)) == 3


async def test_console_documents_stay(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    console = file_search.add_document(
        store_name, "price list.pdf", b"%PDF console", metadata={"sha256": "x", "source": "console"}
    )
    studio = file_search.add_document(store_name, "menu.md", b"uploaded in AI Studio", metadata={})

    report = await run(genai_client, store_name, folder)
    (folder / "menu.md").unlink()
    again = await run(genai_client, store_name, folder)

    names = {doc.name for doc in file_search.documents(store_name)}
    assert {console, studio} <= names
    assert actions(report)["menu.md"] == "uploaded"  # its own document, next to AI Studio's
    assert actions(again)["menu.md"] == "deleted"
    assert "price list.pdf" not in actions(report) | actions(again)
    assert by_display_name(file_search, store_name)["menu.md"] == [
        ""
    ]  # only the AI Studio one is left


async def test_failed_upload_is_reported_and_the_others_go_on(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    file_search.fail_upload("hours.txt", status=500)
    file_search.fail_upload("menu.md", status=400, stage="start")
    file_search.fail_processing("policies/returns.pdf", "the PDF is encrypted")

    report = await run(genai_client, store_name, folder)

    results = {result.path: result for result in report.results}
    assert results["hours.txt"].action == "failed"
    assert "500" in (results["hours.txt"].reason or "")
    assert results["menu.md"].action == "failed"
    assert "400 INVALID_ARGUMENT" in (results["menu.md"].reason or "")
    assert results["policies/returns.pdf"] == FileResult(
        "policies/returns.pdf",
        31,
        "failed",
        "Gemini could not process the document: the PDF is encrypted",
    )
    assert results["policies/warranty.docx"].action == "uploaded"
    assert set(by_display_name(file_search, store_name)) == {"policies/warranty.docx"}


async def test_failed_upload_of_a_changed_file_keeps_the_old_document(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    await run(genai_client, store_name, folder)
    write(folder, "hours.txt", b"Open 10-18 now\n")
    file_search.fail_upload("hours.txt")

    report = await run(genai_client, store_name, folder)

    assert actions(report)["hours.txt"] == "failed"
    assert by_display_name(file_search, store_name)["hours.txt"] == [
        sha(b"Open 9-18, closed on Sundays\n")
    ]

    file_search.clear_failures()
    fixed = await run(genai_client, store_name, folder)
    assert actions(fixed)["hours.txt"] == "uploaded"
    assert by_display_name(file_search, store_name)["hours.txt"] == [sha(b"Open 10-18 now\n")]


async def test_failed_processing_leaving_a_failed_document_is_retried(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    file_search.fail_processing("menu.md", keep_failed=True)
    first = await run(genai_client, store_name, folder)
    assert actions(first)["menu.md"] == "failed"
    assert [d.state for d in file_search.documents(store_name) if d.display_name == "menu.md"] == [
        "STATE_FAILED"
    ]
    file_search.clear_failures()

    second = await run(genai_client, store_name, folder)

    assert actions(second)["menu.md"] == "uploaded"
    assert [d.state for d in file_search.documents(store_name) if d.display_name == "menu.md"] == [
        "STATE_ACTIVE"
    ]


async def test_unsupported_hidden_and_empty_files(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    write(folder, "photo.jpg", b"\xff\xd8\xff")
    write(folder, "README", b"no extension")
    write(folder, "blank.txt", b"")
    write(folder, ".env", b"SECRET=1")
    write(folder, ".git/config", b"[core]")
    write(folder, "drafts/.hidden.md", b"# not yet")

    report = await run(genai_client, store_name, folder)

    skipped = {r.path: r.reason for r in report.results if r.action == "skipped"}
    assert skipped == {
        "photo.jpg": "unsupported file type .jpg",
        "README": "unsupported file without an extension",
        "blank.txt": "empty file",
    }
    assert report.uploaded == 4
    assert not any(
        ".env" in r.path or ".git" in r.path or "hidden" in r.path for r in report.results
    )
    assert set(by_display_name(file_search, store_name)) == {
        "hours.txt",
        "menu.md",
        "policies/returns.pdf",
        "policies/warranty.docx",
    }


async def test_file_over_the_limit_is_refused_and_keeps_its_document(
    genai_client: genai.Client,
    file_search: FakeFileSearch,
    store_name: str,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await run(genai_client, store_name, folder)
    write(folder, "menu.md", b"# Menu\n" + b"x" * 100)
    monkeypatch.setattr(sync, "MAX_FILE_BYTES", 64)
    calls_before = len(file_search.calls)

    report = await run(genai_client, store_name, folder)

    result = next(r for r in report.results if r.path == "menu.md")
    assert result == FileResult(
        "menu.md", 107, "failed", "larger than 100 MB, the File Search limit"
    )
    assert not [c for c in file_search.calls[calls_before:] if c.method != "GET"]
    assert by_display_name(file_search, store_name)["menu.md"] == [sha(b"# Menu\nPizza 12 EUR\n")]


async def test_upload_that_never_finishes_is_a_failure(
    file_search_router: respx.Router, store_name: str, folder: Path, file_search: FakeFileSearch
) -> None:
    file_search.polls_until_done = 10_000
    async with httpx.AsyncClient() as http:
        genai_client = make_client(http)
        report = await synchronise(
            genai_client,
            store_name,
            folder,
            polling=Polling(timeout=0.05, first_delay=0.01, max_delay=0.01),
        )
        await genai_client.aio.aclose()

    assert report.failed == 4
    assert {r.reason for r in report.results} == {"Gemini did not finish processing within 0.05 s"}


async def test_a_500_once_fails_one_file_without_retries_and_nothing_with_them(
    file_search_router: respx.Router, store_name: str, folder: Path, file_search: FakeFileSearch
) -> None:
    file_search.fail_next("POST", ":uploadToFileSearchStore", status=500)
    async with httpx.AsyncClient() as http:
        genai_client = make_client(http)
        report = await run(genai_client, store_name, folder, concurrency=1)
        await genai_client.aio.aclose()
    assert (report.uploaded, report.failed) == (3, 1)

    file_search.fail_next("GET", "/documents", status=503)
    file_search.fail_next("POST", ":uploadToFileSearchStore", status=500)
    retries = types.HttpRetryOptions(attempts=3, initial_delay=0.001, max_delay=0.001)
    async with httpx.AsyncClient() as http:
        genai_client = make_client(http, retry_options=retries)
        again = await run(genai_client, store_name, folder)
        await genai_client.aio.aclose()
    assert (again.uploaded, again.unchanged, again.failed) == (1, 3, 0)


async def test_store_that_cannot_be_listed_raises(
    genai_client: genai.Client, file_search: FakeFileSearch, folder: Path
) -> None:
    with pytest.raises(KnowledgeError) as caught:
        await run(genai_client, "fileSearchStores/missing-0123456789ab", folder)
    assert caught.value.code == 404
    assert caught.value.reason.startswith("could not list the documents: Gemini API error 404")


async def test_an_emptied_folder_deletes_every_folder_document(
    genai_client: genai.Client,
    file_search: FakeFileSearch,
    store_name: str,
    folder: Path,
    tmp_path: Path,
) -> None:
    await run(genai_client, store_name, folder)
    file_search.add_document(store_name, "faq.md", b"console", metadata={"source": "console"})
    emptied = tmp_path / "emptied"
    emptied.mkdir()

    report = await run(genai_client, store_name, emptied)

    assert report.deleted == 4
    assert [doc.display_name for doc in file_search.documents(store_name)] == ["faq.md"]


async def test_a_missing_folder_deletes_nothing(
    genai_client: genai.Client,
    file_search: FakeFileSearch,
    store_name: str,
    folder: Path,
    tmp_path: Path,
) -> None:
    """Most often a mistyped path: emptying the store for it would lose every document."""
    await run(genai_client, store_name, folder)
    calls = len(file_search.calls)

    with pytest.raises(KnowledgeError) as refused:
        await run(genai_client, store_name, tmp_path / "nowhere")

    assert "does not exist" in refused.value.reason
    assert len(file_search.documents(store_name)) == 4
    assert file_search.calls[calls:] == []  # not even listed


async def test_many_documents_are_read_page_by_page(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    for number in range(45):
        write(folder, f"notes/{number:02}.txt", f"note {number}".encode())
    await run(genai_client, store_name, folder, concurrency=8)
    calls_before = len(file_search.calls)

    report = await run(genai_client, store_name, folder)

    assert report.unchanged == 45
    pages = [c.query for c in file_search.calls[calls_before:]]
    assert pages == [
        "pageSize=20",
        "pageSize=20&pageToken=offset-20",
        "pageSize=20&pageToken=offset-40",
    ]


async def test_duplicates_of_one_file_are_reduced_to_one(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    content = (folder / "hours.txt").read_bytes()
    metadata = {"sha256": sha(content), "source": "folder"}
    for _ in range(2):  # as if two instances had synchronised at once, without the lock
        file_search.add_document(store_name, "hours.txt", content, metadata=metadata)

    report = await run(genai_client, store_name, folder)

    assert actions(report)["hours.txt"] == "unchanged"
    assert by_display_name(file_search, store_name)["hours.txt"] == [sha(content)]


class MemoryRegistry:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    async def get(self, business: str) -> str | None:
        return self.names.get(business)

    async def set(self, business: str, store_name: str) -> None:
        self.names[business] = store_name


async def test_ensure_store_creates_once_and_reuses(
    genai_client: genai.Client, file_search: FakeFileSearch
) -> None:
    registry = MemoryRegistry()

    first = await ensure_store(genai_client, registry, "Acme Bakery")
    second = await ensure_store(genai_client, registry, "Acme Bakery")
    other = await ensure_store(genai_client, registry, "Other shop")

    assert first == second != other
    assert registry.names == {"Acme Bakery": first, "Other shop": other}
    assert len(file_search.calls_to("POST", "/v1/fileSearchStores")) == 2
    assert file_search.stores[first].display_name == "WhatsApp assistant: Acme Bakery"
    assert first.startswith("fileSearchStores/whatsapp-assistant-acme-bak-")


def test_report_counts_and_summary() -> None:
    report = SyncReport(
        [
            FileResult("a.md", 1, "uploaded"),
            FileResult("b.md", 1, "uploaded"),
            FileResult("c.md", 1, "skipped", "empty file"),
        ]
    )
    assert (report.uploaded, report.skipped, report.failed) == (2, 1, 0)
    assert report.summary() == "2 uploaded, 0 unchanged, 0 deleted, 0 failed, 1 skipped"


async def test_folder_that_is_a_file_is_refused(
    genai_client: genai.Client, store_name: str, tmp_path: Path
) -> None:
    not_a_folder = write(tmp_path, "knowledge", b"oops")
    with pytest.raises(KnowledgeError):
        await run(genai_client, store_name, not_a_folder)


async def test_unreachable_gemini_fails_each_file(
    store_name: str, folder: Path, file_search: FakeFileSearch
) -> None:
    def refuse_uploads(request: httpx.Request) -> httpx.Response:
        if "uploadToFileSearchStore" in request.url.path:
            raise httpx.ConnectError("connection refused", request=request)
        return file_search.handle(request)

    with respx.mock(assert_all_mocked=True) as mock:
        mock.route(url__startswith=BASE_URL).mock(side_effect=refuse_uploads)
        async with httpx.AsyncClient() as http:
            genai_client = make_client(http)
            report = await run(genai_client, store_name, folder)
            await genai_client.aio.aclose()

    assert report.failed == 4
    assert {r.reason for r in report.results} == {
        "could not upload: Gemini unreachable (ConnectError)"
    }


async def test_unreadable_subfolder_stops_the_sync_instead_of_deleting(
    genai_client: genai.Client,
    file_search: FakeFileSearch,
    store_name: str,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await run(genai_client, store_name, folder)
    real_walk = os.walk

    def walk(
        top: Path, onerror: Callable[[OSError], None]
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        for root, dirs, names in real_walk(top, onerror=onerror):
            if root.endswith("policies"):  # as os.walk does when it cannot list a folder
                onerror(PermissionError(13, "Permission denied", root))
                continue
            yield root, dirs, names

    monkeypatch.setattr(os, "walk", walk)
    with pytest.raises(KnowledgeError, match=r"cannot read .*policies: Permission denied"):
        await run(genai_client, store_name, folder)
    assert len(file_search.documents(store_name)) == 4


async def test_concurrency_must_be_positive(
    genai_client: genai.Client, store_name: str, folder: Path
) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await run(genai_client, store_name, folder, concurrency=0)
