"""An in-memory Gemini File Search that answers httpx requests (a respx side effect)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

PAGE_LIMIT = 20
DEFAULT_PAGE_SIZE = 10
UPLOAD_RESPONSE_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1.UploadToFileSearchStoreResponse"
)
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

Stage = Literal["start", "finalize"]
Handler = Callable[[httpx.Request, "re.Match[str]"], httpx.Response]


@dataclass
class FakeDocument:
    name: str
    display_name: str
    mime_type: str
    content: bytes
    custom_metadata: list[dict[str, Any]]
    state: str = "STATE_PENDING"
    create_time: str | None = None  # None: Google gave none (left out of the JSON)

    @property
    def metadata(self) -> dict[str, str]:
        """The string-valued custom metadata, key -> value."""
        return {
            item["key"]: item["stringValue"]
            for item in self.custom_metadata
            if "stringValue" in item
        }

    def as_json(self) -> dict[str, Any]:
        body = {
            "name": self.name,
            "displayName": self.display_name,
            "customMetadata": self.custom_metadata,
            "state": self.state,
            "sizeBytes": str(len(self.content)),  # int64: a JSON string, like Google
            "mimeType": self.mime_type,
        }
        if self.create_time is not None:
            body.update(createTime=self.create_time, updateTime=self.create_time)
        return body


@dataclass
class FakeStore:
    name: str
    display_name: str
    create_time: str
    documents: dict[str, FakeDocument] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "displayName": self.display_name,
            "createTime": self.create_time,
            "updateTime": self.create_time,
        }
        counts = {
            "activeDocumentsCount": self._count("STATE_ACTIVE"),
            "pendingDocumentsCount": self._count("STATE_PENDING"),
            "failedDocumentsCount": self._count("STATE_FAILED"),
            "sizeBytes": sum(len(doc.content) for doc in self.documents.values()),
        }
        # proto3 JSON: int64 as strings, zero values left out
        body.update({key: str(value) for key, value in counts.items() if value})
        return body

    def _count(self, state: str) -> int:
        return sum(1 for doc in self.documents.values() if doc.state == state)


@dataclass
class FakeOperation:
    name: str
    store: str
    document: str
    polls_left: int
    error: str | None = None
    keep_failed_document: bool = False
    done: bool = False
    polls: int = 0


@dataclass
class UploadSession:
    store: str
    display_name: str
    mime_type: str
    custom_metadata: list[dict[str, Any]]
    declared_size: int
    received: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Call:
    """One request the fake answered (the API key's presence only, never its value)."""

    method: str
    path: str
    query: str
    has_api_key: bool
    upload_command: str | None


@dataclass
class _Injected:
    method: str
    path_contains: str
    status: int
    times: int


class FakeFileSearch:
    """Stores, documents and upload operations in memory, over Gemini's v1 HTTP paths.

    Install with `router.route(url__startswith=fake.base_url).mock(side_effect=fake.handle)`.
    Upload operations are done after `polls_until_done` GETs (0: done in the upload's answer).
    """

    def __init__(self, base_url: str = "https://gemini.test", *, polls_until_done: int = 1) -> None:
        self.base_url = base_url.rstrip("/")
        self.polls_until_done = polls_until_done
        self.stores: dict[str, FakeStore] = {}
        self.operations: dict[str, FakeOperation] = {}
        self.calls: list[Call] = []
        self._sessions: dict[str, UploadSession] = {}
        self._failing_uploads: dict[str, tuple[Stage, int]] = {}
        self._failing_processing: dict[str, tuple[str, bool]] = {}
        self._injected: list[_Injected] = []
        self._held: list[tuple[str, str, threading.Event]] = []
        self._lock = threading.Lock()
        v = r"/(?:v1|v1beta)"
        store = r"fileSearchStores/[a-z0-9-]+"
        doc = rf"(({store})/documents/[a-z0-9-]+)"
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(rf"{v}/fileSearchStores"), self._create_store),
            ("GET", re.compile(rf"{v}/fileSearchStores"), self._list_stores),
            ("GET", re.compile(rf"{v}/({store})"), self._get_store),
            ("DELETE", re.compile(rf"{v}/({store})"), self._delete_store),
            ("GET", re.compile(rf"{v}/({store})/documents"), self._list_documents),
            ("GET", re.compile(rf"{v}/{doc}"), self._get_document),
            ("DELETE", re.compile(rf"{v}/{doc}"), self._delete_document),
            ("GET", re.compile(rf"{v}/({store}/upload/operations/[a-z0-9-]+)"), self._operation),
            ("POST", re.compile(rf"/upload{v}/({store}):uploadToFileSearchStore"), self._upload),
        ]

    # -- failure injection -------------------------------------------------------------

    def fail_upload(
        self, display_name: str, *, status: int = 500, stage: Stage = "finalize"
    ) -> None:
        """The upload of this display name answers `status` at its start or its finalize."""
        self._failing_uploads[display_name] = (stage, status)

    def fail_processing(
        self, display_name: str, message: str = "could not parse", *, keep_failed: bool = False
    ) -> None:
        """This display name's upload operation ends in error (its document dropped or failed)."""
        self._failing_processing[display_name] = (message, keep_failed)

    def fail_next(
        self, method: str, path_contains: str, *, status: int = 500, times: int = 1
    ) -> None:
        """The next `times` matching requests answer `status` (e.g. a 500 once)."""
        self._injected.append(_Injected(method.upper(), path_contains, status, times))

    def hold(self, method: str, path_contains: str) -> threading.Event:
        """Matching requests wait, as a slow Google would, until the event is set (from any
        thread); installed as `wait_if_held`, a respx side effect before `handle`."""
        released = threading.Event()
        self._held.append((method.upper(), path_contains, released))
        return released

    async def wait_if_held(self, request: httpx.Request) -> None:
        """None once the request may go on, so that the next route (`handle`) answers it."""
        for method, fragment, released in list(self._held):
            if method == request.method and fragment in request.url.path:
                while not released.is_set():
                    await asyncio.sleep(0.02)

    def clear_failures(self) -> None:
        """Every injected failure still pending is forgotten."""
        self._failing_uploads.clear()
        self._failing_processing.clear()
        self._injected.clear()

    # -- direct access for tests -------------------------------------------------------

    def add_store(self, display_name: str) -> str:
        with self._lock:
            return self._new_store(display_name).name

    def add_document(
        self,
        store_name: str,
        display_name: str,
        content: bytes,
        *,
        metadata: Mapping[str, str],
        mime_type: str = "text/plain",
        state: str = "STATE_ACTIVE",
    ) -> str:
        """A document put in directly (as the console or AI Studio would); its name."""
        custom = [{"key": key, "stringValue": value} for key, value in metadata.items()]
        with self._lock:
            store = self.stores[store_name]
            doc = self._new_document(store, display_name, mime_type, content, custom)
            doc.state = state
            return doc.name

    def documents(self, store_name: str) -> list[FakeDocument]:
        return list(self.stores[store_name].documents.values())

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    # -- the HTTP side -----------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as Gemini would."""
        with self._lock:
            self.calls.append(
                Call(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query.decode(),
                    has_api_key=bool(request.headers.get("x-goog-api-key")),
                    upload_command=request.headers.get("x-goog-upload-command"),
                )
            )
            injected = self._take_injected(request)
            if injected is not None:
                return error(injected, "injected failure")
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(request.url.path)
                if match and method == request.method:
                    if not self._authorised(request):
                        return error(403, "Method doesn't allow unregistered callers")
                    return handler(request, match)
            return error(404, f"no route for {request.method} {request.url.path}")

    def _authorised(self, request: httpx.Request) -> bool:
        """Every call carries the API key except the upload session's, like Google."""
        return "upload_id" in request.url.params or bool(request.headers.get("x-goog-api-key"))

    def _take_injected(self, request: httpx.Request) -> int | None:
        for injected in self._injected:
            if injected.method == request.method and injected.path_contains in request.url.path:
                injected.times -= 1
                if injected.times <= 0:
                    self._injected.remove(injected)
                return injected.status
        return None

    def _create_store(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = _json_body(request)
        store = self._new_store(str(_field(body, "displayName") or ""))
        return httpx.Response(200, json=store.as_json())

    def _list_stores(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        stores = [store.as_json() for store in self.stores.values()]
        return _page(request, stores, "fileSearchStores")

    def _get_store(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        store = self.stores.get(match[1])
        if store is None:
            return error(404, f"{match[1]} not found")
        return httpx.Response(200, json=store.as_json())

    def _delete_store(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        store = self.stores.get(match[1])
        if store is None:
            return error(404, f"{match[1]} not found")
        if store.documents and not _forced(request):
            return error(400, "store is not empty; set force")
        del self.stores[match[1]]
        return httpx.Response(200, json={})

    def _list_documents(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        store = self.stores.get(match[1])
        if store is None:
            return error(404, f"{match[1]} not found")
        documents = [doc.as_json() for doc in store.documents.values()]
        return _page(request, documents, "documents")

    def _get_document(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        doc = self._find_document(match[1])
        if doc is None:
            return error(404, f"{match[1]} not found")
        return httpx.Response(200, json=doc.as_json())

    def _delete_document(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        doc = self._find_document(match[1])
        if doc is None:
            return error(404, f"{match[1]} not found")
        if not _forced(request):
            return error(400, "document has chunks; set force to delete it")
        del self.stores[match[2]].documents[doc.name]
        return httpx.Response(200, json={})

    def _operation(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        operation = self.operations.get(match[1])
        if operation is None:
            return error(404, f"{match[1]} not found")
        operation.polls += 1
        operation.polls_left -= 1
        if operation.polls_left <= 0:
            self._complete(operation)
        return httpx.Response(200, json=self._operation_json(operation))

    def _upload(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        store = self.stores.get(match[1])
        if store is None:
            return error(404, f"{match[1]} not found")
        upload_id = request.url.params.get("upload_id")
        if upload_id is None:
            return self._start_upload(request, store)
        session = self._sessions.get(upload_id)
        if session is None or session.store != store.name:
            return error(404, "no such upload session")
        return self._receive_chunk(request, upload_id, session)

    def _start_upload(self, request: httpx.Request, store: FakeStore) -> httpx.Response:
        headers = request.headers
        if headers.get("x-goog-upload-protocol") != "resumable":
            return error(400, "expected X-Goog-Upload-Protocol: resumable")
        if headers.get("x-goog-upload-command") != "start":
            return error(400, "expected X-Goog-Upload-Command: start")
        declared = headers.get("x-goog-upload-header-content-length", "")
        if not declared.isdigit():
            return error(400, "missing X-Goog-Upload-Header-Content-Length")
        body = _json_body(request)
        display_name = str(_field(body, "displayName") or "")
        failure = self._failing_uploads.get(display_name)
        if failure is not None and failure[0] == "start":
            return error(failure[1], "upload refused")
        mime_type = str(
            _field(body, "mimeType") or headers.get("x-goog-upload-header-content-type") or ""
        )
        metadata = [_metadata_item(item) for item in _field(body, "customMetadata") or []]
        upload_id = secrets.token_hex(8)
        self._sessions[upload_id] = UploadSession(
            store.name, display_name, mime_type, metadata, int(declared)
        )
        url = f"{self.base_url}/upload/v1/{store.name}:uploadToFileSearchStore"
        return httpx.Response(
            200,
            headers={
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-URL": f"{url}?upload_id={upload_id}&upload_protocol=resumable",
                "X-Goog-Upload-Chunk-Granularity": "262144",
            },
        )

    def _receive_chunk(
        self, request: httpx.Request, upload_id: str, session: UploadSession
    ) -> httpx.Response:
        command = {
            part.strip() for part in request.headers.get("x-goog-upload-command", "").split(",")
        }
        if "upload" not in command:
            return error(400, "expected X-Goog-Upload-Command: upload")
        if request.headers.get("x-goog-upload-offset") != str(len(session.received)):
            return error(400, "wrong X-Goog-Upload-Offset")
        session.received += request.content
        if "finalize" not in command:
            return httpx.Response(200, headers={"X-Goog-Upload-Status": "active"})
        del self._sessions[upload_id]
        final = {"X-Goog-Upload-Status": "final"}
        failure = self._failing_uploads.get(session.display_name)
        if failure is not None and failure[0] == "finalize":
            return error(failure[1], "upload failed", headers=final)
        if len(session.received) != session.declared_size:
            return error(
                400, "size differs from X-Goog-Upload-Header-Content-Length", headers=final
            )
        operation = self._new_operation(session)
        return httpx.Response(200, headers=final, json=self._operation_json(operation))

    # -- state -------------------------------------------------------------------------

    def _new_store(self, display_name: str) -> FakeStore:
        name = f"fileSearchStores/{_slug(display_name, 'store')}-{secrets.token_hex(6)}"
        store = FakeStore(name, display_name, _now())
        self.stores[name] = store
        return store

    def _new_document(
        self,
        store: FakeStore,
        display_name: str,
        mime_type: str,
        content: bytes,
        metadata: list[dict[str, Any]],
    ) -> FakeDocument:
        name = f"{store.name}/documents/{_slug(display_name, 'document')}-{secrets.token_hex(6)}"
        doc = FakeDocument(
            name, display_name, mime_type, bytes(content), metadata, create_time=_now()
        )
        store.documents[name] = doc
        return doc

    def _new_operation(self, session: UploadSession) -> FakeOperation:
        store = self.stores[session.store]
        doc = self._new_document(
            store,
            session.display_name,
            session.mime_type,
            bytes(session.received),
            session.custom_metadata,
        )
        message, keep = self._failing_processing.get(session.display_name, (None, False))
        suffix = f"{_slug(session.display_name, 'op')}-{secrets.token_hex(6)}"
        name = f"{store.name}/upload/operations/{suffix}"
        operation = FakeOperation(name, store.name, doc.name, self.polls_until_done, message, keep)
        self.operations[name] = operation
        if operation.polls_left <= 0:
            self._complete(operation)
        return operation

    def _complete(self, operation: FakeOperation) -> None:
        if operation.done:
            return
        operation.done = True
        store = self.stores.get(operation.store)
        doc = store.documents.get(operation.document) if store else None
        if doc is None or store is None:
            return
        if operation.error is None:
            doc.state = "STATE_ACTIVE"
        elif operation.keep_failed_document:
            doc.state = "STATE_FAILED"
        else:
            del store.documents[doc.name]

    def _operation_json(self, operation: FakeOperation) -> dict[str, Any]:
        body: dict[str, Any] = {"name": operation.name}
        if not operation.done:
            return body  # proto3 JSON leaves `done: false` out
        body["done"] = True
        if operation.error is not None:
            body["error"] = {"code": 13, "message": operation.error}
        else:
            body["response"] = {
                "@type": UPLOAD_RESPONSE_TYPE,
                "parent": operation.store,
                "documentName": operation.document,
            }
        return body

    def _find_document(self, name: str) -> FakeDocument | None:
        store = self.stores.get(name.split("/documents/")[0])
        return store.documents.get(name) if store else None


def error(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """Google's error body."""
    body = {
        "error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    }
    return httpx.Response(status, json=body, headers=headers)


def grounded_answer(
    text: str, titles: Sequence[str], *, store_name: str = "fileSearchStores/test-store"
) -> dict[str, Any]:
    """A generateContent answer whose grounding metadata names the documents used."""
    chunks = [
        {
            "retrievedContext": {
                "title": title,
                "text": f"excerpt of {title}",
                "fileSearchStore": store_name,
            }
        }
        for title in titles
    ]
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "groundingMetadata": {"groundingChunks": chunks},
            }
        ],
        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 9, "totalTokenCount": 49},
        "modelVersion": "gemini-3.8-flash",
    }


def grounded_response(
    text: str, titles: Sequence[str], *, store_name: str = "fileSearchStores/test-store"
) -> httpx.Response:
    return httpx.Response(200, json=grounded_answer(text, titles, store_name=store_name))


def _page(request: httpx.Request, items: list[dict[str, Any]], key: str) -> httpx.Response:
    size_text = request.url.params.get("pageSize", str(DEFAULT_PAGE_SIZE))
    token = request.url.params.get("pageToken", "")
    if not size_text.isdigit() or not 0 < int(size_text) <= PAGE_LIMIT:
        return error(400, f"pageSize must be between 1 and {PAGE_LIMIT}")
    if token and not re.fullmatch(r"offset-\d+", token):
        return error(400, "invalid pageToken")
    start = int(token.removeprefix("offset-")) if token else 0
    end = start + int(size_text)
    body: dict[str, Any] = {key: items[start:end]} if items[start:end] else {}
    if end < len(items):
        body["nextPageToken"] = f"offset-{end}"
    return httpx.Response(200, json=body)


def _json_body(request: httpx.Request) -> dict[str, Any]:
    if not request.content:
        return {}
    body = json.loads(request.content)
    return body if isinstance(body, dict) else {}


def _field(body: Mapping[str, Any], camel: str) -> Any:
    """A field by its camelCase name or the snake_case one the SDK sometimes sends."""
    if camel in body:
        return body[camel]
    return body.get(re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), camel))


def _metadata_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """One customMetadata entry, stored as Google echoes it (camelCase)."""
    normalised: dict[str, Any] = {"key": str(item.get("key", ""))}
    for name in ("stringValue", "numericValue", "stringListValue"):
        value = _field(item, name)
        if value is not None:
            normalised[name] = value
    return normalised


def _forced(request: httpx.Request) -> bool:
    return str(request.url.params.get("force", "")).lower() == "true"


def _slug(text: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:27].strip("-")
    return slug or fallback


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
