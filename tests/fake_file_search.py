"""An in-memory Gemini File Search that answers httpx requests (a respx side effect): its
request routing; the state it answers over is in `file_search_state.py`."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from file_search_http import camel_field, error, forced, json_body, metadata_item, page
from file_search_resources import Call, FakeStore, UploadSession
from file_search_state import FileSearchState

Handler = Callable[[httpx.Request, "re.Match[str]"], httpx.Response]


class FakeFileSearch(FileSearchState):
    """Stores, documents and upload operations in memory, over Gemini's v1 HTTP paths.

    Install with `router.route(url__startswith=fake.base_url).mock(side_effect=fake.handle)`.
    Upload operations are done after `polls_until_done` GETs (0: done in the upload's answer).
    """

    def __init__(self, base_url: str = "https://gemini.test", *, polls_until_done: int = 1) -> None:
        super().__init__(base_url, polls_until_done=polls_until_done)
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
        body = json_body(request)
        store = self._new_store(str(camel_field(body, "displayName") or ""))
        return httpx.Response(200, json=store.as_json())

    def _list_stores(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        stores = [store.as_json() for store in self.stores.values()]
        return page(request, stores, "fileSearchStores")

    def _get_store(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        store = self.stores.get(match[1])
        if store is None:
            return error(404, f"{match[1]} not found")
        return httpx.Response(200, json=store.as_json())

    def _delete_store(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        store = self.stores.get(match[1])
        if store is None:
            return error(404, f"{match[1]} not found")
        if store.documents and not forced(request):
            return error(400, "store is not empty; set force")
        del self.stores[match[1]]
        return httpx.Response(200, json={})

    def _list_documents(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        store = self.stores.get(match[1])
        if store is None:
            return error(404, f"{match[1]} not found")
        documents = [doc.as_json() for doc in store.documents.values()]
        return page(request, documents, "documents")

    def _get_document(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        doc = self._find_document(match[1])
        if doc is None:
            return error(404, f"{match[1]} not found")
        return httpx.Response(200, json=doc.as_json())

    def _delete_document(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        doc = self._find_document(match[1])
        if doc is None:
            return error(404, f"{match[1]} not found")
        if not forced(request):
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
        body = json_body(request)
        display_name = str(camel_field(body, "displayName") or "")
        failure = self._failing_uploads.get(display_name)
        if failure is not None and failure[0] == "start":
            return error(failure[1], "upload refused")
        mime_type = str(
            camel_field(body, "mimeType") or headers.get("x-goog-upload-header-content-type") or ""
        )
        metadata = [metadata_item(item) for item in camel_field(body, "customMetadata") or []]
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
