"""Tests for documents/filesearch.py and the fake: what google-genai really sends and reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from fake_file_search import FakeFileSearch, grounded_response
from filesearch_support import (
    API_KEY,
    BASE_URL,
    FAST,
    make_client,
)
from google import genai

from documents.filesearch import (
    Document,
    KnowledgeError,
    Polling,
    Store,
    create_store,
    delete_document,
    document_metadata,
    get_store,
    list_documents,
    upload_document,
)

CHUNK = 8 * 1024 * 1024  # the SDK's upload chunk


async def upload(
    genai_client: genai.Client, store_name: str, data: bytes, name: str = "a/b.txt"
) -> str:
    metadata = document_metadata(data, "console")
    return await upload_document(
        genai_client,
        store_name,
        data,
        display_name=name,
        mime_type="text/plain",
        metadata=metadata,
        polling=FAST,
    )


async def test_upload_wire_format(
    genai_client: genai.Client,
    file_search_router: respx.Router,
    file_search: FakeFileSearch,
    store_name: str,
) -> None:
    data = b"Opening hours: 9 to 18"

    name = await upload(genai_client, store_name, data)

    requests = [call.request for call in file_search_router.calls]
    start, chunk, *polls = requests
    assert (start.method, str(start.url)) == (
        "POST",
        f"{BASE_URL}/upload/v1/{store_name}:uploadToFileSearchStore",
    )
    assert start.headers["x-goog-api-key"] == API_KEY
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-length"] == str(len(data))
    assert start.headers["x-goog-upload-header-content-type"] == "text/plain"
    assert json.loads(start.content) == {
        "displayName": "a/b.txt",
        "mimeType": "text/plain",
        "customMetadata": [  # snake_case inside the list, as FACTS.md says
            {"key": "sha256", "string_value": document_metadata(data, "console")["sha256"]},
            {"key": "source", "string_value": "console"},
        ],
    }
    assert chunk.method == "POST"
    assert chunk.url.params["upload_id"]
    assert str(chunk.url).startswith(f"{BASE_URL}/upload/v1/{store_name}:uploadToFileSearchStore?")
    assert "x-goog-api-key" not in chunk.headers
    assert chunk.headers["x-goog-upload-command"] == "upload, finalize"
    assert chunk.headers["x-goog-upload-offset"] == "0"
    assert chunk.content == data
    operation = next(iter(file_search.operations))
    assert [(r.method, r.url.path) for r in polls] == [("GET", f"/v1/{operation}")] * 2
    assert all(r.headers["x-goog-api-key"] == API_KEY for r in polls)
    assert name == file_search.documents(store_name)[0].name


async def test_every_call_goes_through_the_given_httpx_client(file_search: FakeFileSearch) -> None:
    """No respx here: a request made outside the given client would go to the network."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(file_search.handle)) as http:
        genai_client = make_client(http)
        store_name = await create_store(genai_client, "Through the client")
        name = await upload(genai_client, store_name.name, b"content")
        assert [doc.name for doc in await list_documents(genai_client, store_name.name)] == [name]
        await delete_document(genai_client, name)
        assert await get_store(genai_client, store_name.name) == Store(
            store_name.name, "Through the client", 0, 0, 0, 0
        )
        await genai_client.aio.aclose()

    paths = [(call.method, call.path) for call in file_search.calls]
    assert [method for method, _ in paths] == [
        "POST",
        "POST",
        "POST",
        "GET",
        "GET",
        "GET",
        "DELETE",
        "GET",
    ]
    assert paths[2][1].startswith("/upload/v1/")  # the bytes, through the given client too


async def test_sdk_timeout_replaces_the_httpx_clients_own(
    file_search_router: respx.Router, store_name: str
) -> None:
    """Without HttpOptions(timeout=...) the SDK sends every request with no timeout at all."""
    async with httpx.AsyncClient(timeout=7.0) as http:
        without = make_client(http)
        await upload(without, store_name, b"one")
        with_timeout = make_client(http, timeout=30_000)
        await upload(with_timeout, store_name, b"two", "c.txt")
        await without.aio.aclose()
        await with_timeout.aio.aclose()

    timeouts = [call.request.extensions["timeout"]["read"] for call in file_search_router.calls]
    assert timeouts == [None] * 4 + [30.0] * 4


async def test_large_upload_goes_in_chunks(
    genai_client: genai.Client,
    file_search_router: respx.Router,
    file_search: FakeFileSearch,
    store_name: str,
) -> None:
    data = bytes(range(256)) * (CHUNK // 256) + b"tail!"

    await upload(genai_client, store_name, data, "big.txt")

    chunks = [
        call.request for call in file_search_router.calls if "upload_id" in call.request.url.params
    ]
    assert [c.headers["x-goog-upload-command"] for c in chunks] == ["upload", "upload, finalize"]
    assert [c.headers["x-goog-upload-offset"] for c in chunks] == ["0", str(CHUNK)]
    assert file_search.documents(store_name)[0].content == data


async def test_documents_are_read_into_dataclasses(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str
) -> None:
    folder = file_search.add_document(
        store_name,
        "menu.md",
        b"# Menu",
        metadata={"sha256": "ab" * 32, "source": "folder"},
        mime_type="text/markdown",
    )
    file_search.add_document(store_name, "draft.pdf", b"%PDF", metadata={}, state="STATE_PENDING")
    file_search.add_document(
        store_name, "bad.pdf", b"%PDF!", metadata={"source": "x"}, state="STATE_FAILED"
    )

    documents = {doc.display_name: doc for doc in await list_documents(genai_client, store_name)}

    menu = documents["menu.md"]
    assert menu == Document(
        name=folder,
        display_name="menu.md",
        state="active",
        size_bytes=6,
        mime_type="text/markdown",
        sha256="ab" * 32,
        source="folder",
        created=menu.created,
    )
    assert menu.created is not None
    assert abs(menu.created - datetime.now(UTC)).total_seconds() < 60
    assert (documents["draft.pdf"].state, documents["draft.pdf"].source) == ("pending", "console")
    assert documents["draft.pdf"].sha256 is None
    assert (documents["bad.pdf"].state, documents["bad.pdf"].source) == ("failed", "console")


async def test_store_create_and_get(
    genai_client: genai.Client, file_search: FakeFileSearch
) -> None:
    created = await create_store(genai_client, "Acme")
    file_search.add_document(created.name, "a.txt", b"12345", metadata={})
    file_search.add_document(created.name, "b.txt", b"123", metadata={}, state="STATE_PENDING")

    store_name = await get_store(genai_client, created.name)

    assert created == Store(created.name, "Acme", 0, 0, 0, 0)
    assert store_name == Store(created.name, "Acme", 1, 1, 0, 8)
    assert await get_store(genai_client, "fileSearchStores/gone-0123456789ab") is None


async def test_delete_is_forced_and_idempotent(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str
) -> None:
    name = file_search.add_document(store_name, "a.txt", b"x", metadata={})

    await delete_document(genai_client, name)
    await delete_document(genai_client, name)

    assert file_search.documents(store_name) == []
    deletes = file_search.calls_to("DELETE", "/documents/")
    assert [call.query for call in deletes] == ["force=True", "force=True"]


async def test_operation_error_and_timeout_are_knowledge_errors(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str
) -> None:
    file_search.fail_processing("a/b.txt", "unsupported encoding")
    with pytest.raises(KnowledgeError, match="could not process the document: unsupported"):
        await upload(genai_client, store_name, b"data")

    file_search.polls_until_done = 1000
    with pytest.raises(KnowledgeError, match=r"did not finish processing within 0\.02 s"):
        await upload_document(
            genai_client,
            store_name,
            b"data",
            display_name="slow.txt",
            mime_type="text/plain",
            metadata={},
            polling=Polling(timeout=0.02, first_delay=0.005, max_delay=0.005),
        )


async def test_operation_done_in_the_upload_answer_is_not_polled(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str
) -> None:
    file_search.polls_until_done = 0

    await upload(genai_client, store_name, b"quick")

    assert file_search.calls_to("GET", "/operations/") == []


async def test_api_and_transport_errors_are_knowledge_errors(file_search: FakeFileSearch) -> None:
    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/documents"):
            raise httpx.ReadTimeout("slow", request=request)
        return file_search.handle(request)

    store_name = file_search.add_store("Errors")
    with respx.mock(assert_all_mocked=True) as mock:
        mock.route(url__startswith=BASE_URL).mock(side_effect=flaky)
        async with httpx.AsyncClient() as http:
            genai_client = make_client(http)
            with pytest.raises(KnowledgeError) as timed_out:
                await list_documents(genai_client, store_name)
            file_search.fail_next("POST", "/fileSearchStores", status=429)
            with pytest.raises(KnowledgeError) as refused:
                await create_store(genai_client, "x")
            await genai_client.aio.aclose()

    assert timed_out.value.reason == "could not list the documents: Gemini timed out"
    assert timed_out.value.code is None
    assert refused.value.code == 429
    assert refused.value.reason == (
        "could not create the store: Gemini API error 429 RESOURCE_EXHAUSTED: injected failure"
    )


async def test_fake_reads_camel_and_snake_case_and_checks_its_callers(
    file_search: FakeFileSearch,
) -> None:
    key = {"x-goog-api-key": "k"}
    made = file_search.handle(
        httpx.Request(
            "POST", f"{BASE_URL}/v1/fileSearchStores", json={"display_name": "Snake"}, headers=key
        )
    )
    store_name = made.json()["name"]
    started = file_search.handle(
        httpx.Request(
            "POST",
            f"{BASE_URL}/upload/v1/{store_name}:uploadToFileSearchStore",
            headers={
                **key,
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": "2",
            },
            json={
                "display_name": "x.md",
                "mime_type": "text/markdown",
                "customMetadata": [{"key": "a", "stringValue": "b"}],
            },
        )
    )
    finished = file_search.handle(
        httpx.Request(
            "POST",
            started.headers["X-Goog-Upload-URL"],
            headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
            content=b"hi",
        )
    )
    listed = file_search.handle(
        httpx.Request("GET", f"{BASE_URL}/v1/{store_name}/documents?pageSize=21", headers=key)
    )
    anonymous = file_search.handle(httpx.Request("GET", f"{BASE_URL}/v1/{store_name}"))

    assert made.json()["displayName"] == "Snake"
    assert "activeDocumentsCount" not in made.json()  # zero int64 values are left out
    assert finished.headers["X-Goog-Upload-Status"] == "final"
    assert "done" not in finished.json()  # not done yet: Google leaves `done: false` out
    doc = file_search.documents(store_name)[0]
    assert (doc.display_name, doc.mime_type, doc.metadata) == ("x.md", "text/markdown", {"a": "b"})
    assert file_search.stores[store_name].as_json()["pendingDocumentsCount"] == "1"
    assert listed.status_code == 400
    assert anonymous.status_code == 403


async def test_stores_are_listed_page_by_page(
    genai_client: genai.Client, file_search: FakeFileSearch
) -> None:
    names = [file_search.add_store(f"Shop {n}") for n in range(5)]

    pager = await genai_client.aio.file_search_stores.list(config={"page_size": 2})
    listed = [store_name.name async for store_name in pager]

    assert listed == names
    assert [c.query for c in file_search.calls_to("GET", "/v1/fileSearchStores")] == [
        "pageSize=2",
        "pageSize=2&pageToken=offset-2",
        "pageSize=2&pageToken=offset-4",
    ]


async def test_grounded_answer_reads_as_the_sdk_expects() -> None:
    answer = grounded_response("We open at 9.", ["hours.txt", "menu.md"])
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.post(f"{BASE_URL}/v1/models/gemini-3.8-flash:generateContent")
        route.mock(return_value=answer)
        async with httpx.AsyncClient() as http:
            genai_client = make_client(http)
            response = await genai_client.aio.models.generate_content(
                model="gemini-3.8-flash",
                contents="When do you open?",
                config={"tools": [{"file_search": {"file_search_store_names": ["s"]}}]},
            )
            await genai_client.aio.aclose()

    assert response.text == "We open at 9."
    metadata = response.candidates[0].grounding_metadata if response.candidates else None
    chunks = metadata.grounding_chunks if metadata else None
    titles = [c.retrieved_context.title for c in chunks or [] if c.retrieved_context]
    assert titles == ["hours.txt", "menu.md"]
    sent = json.loads(route.calls.last.request.content)
    assert sent["tools"] == [{"fileSearch": {"file_search_store_names": ["s"]}}]
