"""Thin async calls over google-genai's File Search stores and their documents."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Literal

import httpx

if TYPE_CHECKING:  # the SDK is imported by whoever builds the client, not by this module
    from google import genai
    from google.genai import types

State = Literal["active", "pending", "failed"]
Source = Literal["folder", "console"]

PAGE_SIZE = 20  # the most documents File Search returns per page
MAX_DISPLAY_NAME = 512  # characters, for stores and documents alike
_STATES: Mapping[str, State] = {"STATE_ACTIVE": "active", "STATE_FAILED": "failed"}
_ERROR_DETAIL = 200  # characters of Google's error message kept in a reason


class KnowledgeError(Exception):
    """A File Search call failed; `reason` says why, `code` is Google's HTTP status if any."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Store:
    name: str
    display_name: str
    active_documents: int
    pending_documents: int
    failed_documents: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    display_name: str
    state: State
    size_bytes: int
    mime_type: str
    sha256: str | None
    source: Source
    created: datetime | None


@dataclass(frozen=True, slots=True)
class Polling:
    """How long to wait for Gemini to process an upload, and how often to ask."""

    timeout: float = 600.0
    first_delay: float = 1.0
    max_delay: float = 15.0


DEFAULT_POLLING = Polling()


def document_metadata(data: bytes, source: Source) -> dict[str, str]:
    """The custom metadata every document of this app carries: its SHA-256 and its origin."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "source": source}


async def create_store(client: genai.Client, display_name: str) -> Store:
    """A new, empty store; Google derives its name from the display name."""
    config: types.CreateFileSearchStoreConfigDict = {
        "display_name": display_name[:MAX_DISPLAY_NAME]
    }
    with _translated("create the store"):
        store = await client.aio.file_search_stores.create(config=config)
    return _store(store)


async def get_store(client: genai.Client, store_name: str) -> Store | None:
    """The store, or None if Google has no store of that name (deleted in AI Studio?)."""
    try:
        with _translated("read the store"):
            store = await client.aio.file_search_stores.get(name=store_name)
    except KnowledgeError as exc:
        if exc.code == 404:
            return None
        raise
    return _store(store)


async def list_documents(client: genai.Client, store_name: str) -> list[Document]:
    """Every document of the store, all pages read."""
    config: types.ListDocumentsConfigDict = {"page_size": PAGE_SIZE}
    with _translated("list the documents"):
        pager = await client.aio.file_search_stores.documents.list(parent=store_name, config=config)
        return [_document(document) async for document in pager]


async def upload_document(
    client: genai.Client,
    store_name: str,
    data: bytes,
    *,
    display_name: str,
    mime_type: str,
    metadata: Mapping[str, str],
    polling: Polling = DEFAULT_POLLING,
) -> str:
    """Upload the bytes as a document and wait until Gemini has processed them; its name.

    The SDK reads an in-memory stream (no temporary file). A timeout, or an operation that
    ends in error, is a `KnowledgeError`; the document may still appear in the store later.
    """
    config: types.UploadToFileSearchStoreConfigDict = {
        "display_name": display_name,
        "mime_type": mime_type,
        "custom_metadata": [{"key": key, "string_value": value} for key, value in metadata.items()],
    }
    with _translated("upload"):
        operation = await client.aio.file_search_stores.upload_to_file_search_store(
            file_search_store_name=store_name, file=io.BytesIO(data), config=config
        )
    return await wait_for_upload(client, operation, polling)


async def wait_for_upload(
    client: genai.Client, operation: types.UploadToFileSearchStoreOperation, polling: Polling
) -> str:
    """Poll the upload's operation with backoff until done; the document's name."""
    deadline = time.monotonic() + polling.timeout
    delay = polling.first_delay
    while not operation.done:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KnowledgeError(f"Gemini did not finish processing within {polling.timeout:g} s")
        if not operation.name:
            raise KnowledgeError("Gemini answered an upload operation without a name")
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, polling.max_delay)
        with _translated("check the upload"):
            operation = await client.aio.operations.get(operation)
    return _document_name(operation)


async def delete_document(client: genai.Client, document_name: str) -> None:
    """Delete the document and its chunks; one that is already gone counts as deleted."""
    config: types.DeleteDocumentConfigDict = {"force": True}
    try:
        with _translated("delete"):
            await client.aio.file_search_stores.documents.delete(name=document_name, config=config)
    except KnowledgeError as exc:
        if exc.code != 404:
            raise


def _document_name(operation: types.UploadToFileSearchStoreOperation) -> str:
    if operation.error:
        message = str(operation.error.get("message") or "no reason given")[:_ERROR_DETAIL]
        raise KnowledgeError(f"Gemini could not process the document: {message}")
    response = operation.response
    if response is None or not response.document_name:
        raise KnowledgeError("Gemini finished the upload without naming the document")
    return response.document_name


def _store(store: types.FileSearchStore) -> Store:
    if not store.name:
        raise KnowledgeError("Gemini answered a store without a name")
    return Store(
        name=store.name,
        display_name=store.display_name or "",
        active_documents=store.active_documents_count or 0,
        pending_documents=store.pending_documents_count or 0,
        failed_documents=store.failed_documents_count or 0,
        size_bytes=store.size_bytes or 0,
    )


def _document(document: types.Document) -> Document:
    if not document.name:
        raise KnowledgeError("Gemini listed a document without a name")
    metadata = {
        item.key: item.string_value
        for item in document.custom_metadata or []
        if item.key and item.string_value is not None
    }
    state = document.state.value if document.state is not None else ""
    return Document(
        name=document.name,
        display_name=document.display_name or "",
        state=_STATES.get(state, "pending"),
        size_bytes=document.size_bytes or 0,
        mime_type=document.mime_type or "",
        sha256=metadata.get("sha256"),
        source="folder" if metadata.get("source") == "folder" else "console",
        created=document.create_time,
    )


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn the SDK's and the transport's failures into `KnowledgeError`."""
    try:
        yield
    except KnowledgeError:
        raise
    except Exception as exc:
        failure = _failure(exc)
        if failure is None:
            raise
        reason, code = failure
        raise KnowledgeError(f"could not {action}: {reason}", code=code) from exc


def _failure(exc: Exception) -> tuple[str, int | None] | None:
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        detail = f": {exc.message[:_ERROR_DETAIL]}" if exc.message else ""
        return f"Gemini API error {exc.code} {exc.status}{detail}", exc.code
    timeouts, transport = _transport_errors()
    if isinstance(exc, timeouts):
        return "Gemini timed out", None
    if isinstance(exc, transport):
        return f"Gemini unreachable ({type(exc).__name__})", None
    if isinstance(exc, ValueError | KeyError):  # a malformed answer; the SDK raises these
        return f"unusable answer from Gemini ({type(exc).__name__})", None
    return None


@cache
def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """Timeouts and transport errors of httpx and, when installed, of the SDK's default httpx2."""
    timeouts: list[type[Exception]] = [httpx.TimeoutException]
    transport: list[type[Exception]] = [httpx.TransportError]
    try:
        import httpx2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pass
    else:
        timeouts.append(httpx2.TimeoutException)
        transport.append(httpx2.TransportError)
    return tuple(timeouts), tuple(transport)
