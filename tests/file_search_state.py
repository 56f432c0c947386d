"""The fake File Search's state and what changes it: stores, documents, upload sessions and
operations in memory, the failures a test injects, and direct access for tests."""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from file_search_resources import Call, FakeDocument, FakeOperation, FakeStore, UploadSession

UPLOAD_RESPONSE_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1.UploadToFileSearchStoreResponse"
)

Stage = Literal["start", "finalize"]


@dataclass
class _Injected:
    method: str
    path_contains: str
    status: int
    times: int


class FileSearchState:
    """What the fake holds; `FakeFileSearch` answers Gemini's HTTP requests over it."""

    def __init__(self, base_url: str, *, polls_until_done: int) -> None:
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


def _slug(text: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:27].strip("-")
    return slug or fallback


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
