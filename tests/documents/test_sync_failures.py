"""A document sync when uploads or Google fail: the file reported, the others going on, old kept.

The real google-genai client against the fake File Search (documents/sync.py).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
from fake_file_search import FakeFileSearch
from filesearch_support import BASE_URL, actions, by_display_name, make_client, run, sha, write
from google import genai
from google.genai import types

from documents import sync
from documents.filesearch import KnowledgeError, Polling
from documents.sync import FileResult, synchronise


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
