"""Tests for knowledge/documents.py and the fake: what google-genai really sends and reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from fake_file_search import FakeFileSearch, grounded_response
from filesearch_support import (  # the fixtures are used by name
    API_KEY,
    BASE_URL,
    FAST,
    client_fixture,  # noqa: F401
    fake_fixture,  # noqa: F401
    make_client,
    router_fixture,  # noqa: F401
    store_fixture,  # noqa: F401
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


async def upload(client: genai.Client, store: str, data: bytes, name: str = "a/b.txt") -> str:
    metadata = document_metadata(data, "console")
    return await upload_document(
        client,
        store,
        data,
        display_name=name,
        mime_type="text/plain",
        metadata=metadata,
        polling=FAST,
    )


async def test_upload_wire_format(
    client: genai.Client, router: respx.Router, fake: FakeFileSearch, store: str
) -> None:
    data = b"Opening hours: 9 to 18"

    name = await upload(client, store, data)

    requests = [call.request for call in router.calls]
    start, chunk, *polls = requests
    assert (start.method, str(start.url)) == (
        "POST",
        f"{BASE_URL}/upload/v1/{store}:uploadToFileSearchStore",
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
    assert str(chunk.url).startswith(f"{BASE_URL}/upload/v1/{store}:uploadToFileSearchStore?")
    assert "x-goog-api-key" not in chunk.headers
    assert chunk.headers["x-goog-upload-command"] == "upload, finalize"
    assert chunk.headers["x-goog-upload-offset"] == "0"
    assert chunk.content == data
    operation = next(iter(fake.operations))
    assert [(r.method, r.url.path) for r in polls] == [("GET", f"/v1/{operation}")] * 2
    assert all(r.headers["x-goog-api-key"] == API_KEY for r in polls)
    assert name == fake.documents(store)[0].name


async def test_every_call_goes_through_the_given_httpx_client(fake: FakeFileSearch) -> None:
    """No respx here: a request made outside the given client would go to the network."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handle)) as http:
        client = make_client(http)
        store = await create_store(client, "Through the client")
        name = await upload(client, store.name, b"content")
        assert [doc.name for doc in await list_documents(client, store.name)] == [name]
        await delete_document(client, name)
        assert await get_store(client, store.name) == Store(
            store.name, "Through the client", 0, 0, 0, 0
        )
        await client.aio.aclose()

    paths = [(call.method, call.path) for call in fake.calls]
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


async def test_sdk_timeout_replaces_the_httpx_clients_own(router: respx.Router, store: str) -> None:
    """Without HttpOptions(timeout=...) the SDK sends every request with no timeout at all."""
    async with httpx.AsyncClient(timeout=7.0) as http:
        without = make_client(http)
        await upload(without, store, b"one")
        with_timeout = make_client(http, timeout=30_000)
        await upload(with_timeout, store, b"two", "c.txt")
        await without.aio.aclose()
        await with_timeout.aio.aclose()

    timeouts = [call.request.extensions["timeout"]["read"] for call in router.calls]
    assert timeouts == [None] * 4 + [30.0] * 4


async def test_large_upload_goes_in_chunks(
    client: genai.Client, router: respx.Router, fake: FakeFileSearch, store: str
) -> None:
    data = bytes(range(256)) * (CHUNK // 256) + b"tail!"

    await upload(client, store, data, "big.txt")

    chunks = [call.request for call in router.calls if "upload_id" in call.request.url.params]
    assert [c.headers["x-goog-upload-command"] for c in chunks] == ["upload", "upload, finalize"]
    assert [c.headers["x-goog-upload-offset"] for c in chunks] == ["0", str(CHUNK)]
    assert fake.documents(store)[0].content == data


async def test_documents_are_read_into_dataclasses(
    client: genai.Client, fake: FakeFileSearch, store: str
) -> None:
    folder = fake.add_document(
        store,
        "menu.md",
        b"# Menu",
        metadata={"sha256": "ab" * 32, "source": "folder"},
        mime_type="text/markdown",
    )
    fake.add_document(store, "draft.pdf", b"%PDF", metadata={}, state="STATE_PENDING")
    fake.add_document(store, "bad.pdf", b"%PDF!", metadata={"source": "x"}, state="STATE_FAILED")

    documents = {doc.display_name: doc for doc in await list_documents(client, store)}

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


async def test_store_create_and_get(client: genai.Client, fake: FakeFileSearch) -> None:
    created = await create_store(client, "Acme")
    fake.add_document(created.name, "a.txt", b"12345", metadata={})
    fake.add_document(created.name, "b.txt", b"123", metadata={}, state="STATE_PENDING")

    store = await get_store(client, created.name)

    assert created == Store(created.name, "Acme", 0, 0, 0, 0)
    assert store == Store(created.name, "Acme", 1, 1, 0, 8)
    assert await get_store(client, "fileSearchStores/gone-0123456789ab") is None


async def test_delete_is_forced_and_idempotent(
    client: genai.Client, fake: FakeFileSearch, store: str
) -> None:
    name = fake.add_document(store, "a.txt", b"x", metadata={})

    await delete_document(client, name)
    await delete_document(client, name)

    assert fake.documents(store) == []
    deletes = fake.calls_to("DELETE", "/documents/")
    assert [call.query for call in deletes] == ["force=True", "force=True"]


async def test_operation_error_and_timeout_are_knowledge_errors(
    client: genai.Client, fake: FakeFileSearch, store: str
) -> None:
    fake.fail_processing("a/b.txt", "unsupported encoding")
    with pytest.raises(KnowledgeError, match="could not process the document: unsupported"):
        await upload(client, store, b"data")

    fake.polls_until_done = 1000
    with pytest.raises(KnowledgeError, match=r"did not finish processing within 0\.02 s"):
        await upload_document(
            client,
            store,
            b"data",
            display_name="slow.txt",
            mime_type="text/plain",
            metadata={},
            polling=Polling(timeout=0.02, first_delay=0.005, max_delay=0.005),
        )


async def test_operation_done_in_the_upload_answer_is_not_polled(
    client: genai.Client, fake: FakeFileSearch, store: str
) -> None:
    fake.polls_until_done = 0

    await upload(client, store, b"quick")

    assert fake.calls_to("GET", "/operations/") == []


async def test_api_and_transport_errors_are_knowledge_errors(fake: FakeFileSearch) -> None:
    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/documents"):
            raise httpx.ReadTimeout("slow", request=request)
        return fake.handle(request)

    store = fake.add_store("Errors")
    with respx.mock(assert_all_mocked=True) as mock:
        mock.route(url__startswith=BASE_URL).mock(side_effect=flaky)
        async with httpx.AsyncClient() as http:
            client = make_client(http)
            with pytest.raises(KnowledgeError) as timed_out:
                await list_documents(client, store)
            fake.fail_next("POST", "/fileSearchStores", status=429)
            with pytest.raises(KnowledgeError) as refused:
                await create_store(client, "x")
            await client.aio.aclose()

    assert timed_out.value.reason == "could not list the documents: Gemini timed out"
    assert timed_out.value.code is None
    assert refused.value.code == 429
    assert refused.value.reason == (
        "could not create the store: Gemini API error 429 RESOURCE_EXHAUSTED: injected failure"
    )


async def test_fake_reads_camel_and_snake_case_and_checks_its_callers(fake: FakeFileSearch) -> None:
    key = {"x-goog-api-key": "k"}
    made = fake.handle(
        httpx.Request(
            "POST", f"{BASE_URL}/v1/fileSearchStores", json={"display_name": "Snake"}, headers=key
        )
    )
    store = made.json()["name"]
    started = fake.handle(
        httpx.Request(
            "POST",
            f"{BASE_URL}/upload/v1/{store}:uploadToFileSearchStore",
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
    finished = fake.handle(
        httpx.Request(
            "POST",
            started.headers["X-Goog-Upload-URL"],
            headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
            content=b"hi",
        )
    )
    listed = fake.handle(
        httpx.Request("GET", f"{BASE_URL}/v1/{store}/documents?pageSize=21", headers=key)
    )
    anonymous = fake.handle(httpx.Request("GET", f"{BASE_URL}/v1/{store}"))

    assert made.json()["displayName"] == "Snake"
    assert "activeDocumentsCount" not in made.json()  # zero int64 values are left out
    assert finished.headers["X-Goog-Upload-Status"] == "final"
    assert "done" not in finished.json()  # not done yet: Google leaves `done: false` out
    doc = fake.documents(store)[0]
    assert (doc.display_name, doc.mime_type, doc.metadata) == ("x.md", "text/markdown", {"a": "b"})
    assert fake.stores[store].as_json()["pendingDocumentsCount"] == "1"
    assert listed.status_code == 400
    assert anonymous.status_code == 403


async def test_stores_are_listed_page_by_page(client: genai.Client, fake: FakeFileSearch) -> None:
    names = [fake.add_store(f"Shop {n}") for n in range(5)]

    pager = await client.aio.file_search_stores.list(config={"page_size": 2})
    listed = [store.name async for store in pager]

    assert listed == names
    assert [c.query for c in fake.calls_to("GET", "/v1/fileSearchStores")] == [
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
            client = make_client(http)
            response = await client.aio.models.generate_content(
                model="gemini-3.8-flash",
                contents="When do you open?",
                config={"tools": [{"file_search": {"file_search_store_names": ["s"]}}]},
            )
            await client.aio.aclose()

    assert response.text == "We open at 9."
    metadata = response.candidates[0].grounding_metadata if response.candidates else None
    chunks = metadata.grounding_chunks if metadata else None
    titles = [c.retrieved_context.title for c in chunks or [] if c.retrieved_context]
    assert titles == ["hours.txt", "menu.md"]
    sent = json.loads(route.calls.last.request.content)
    assert sent["tools"] == [{"fileSearch": {"file_search_store_names": ["s"]}}]
