"""An in-memory KnowledgeData for the console's tests: documents a test adds, and a record of
what the page handed on (uploads, deletions)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from console.knowledge_data import KnowledgeDocument, KnowledgeRefused

from documents.sync import MIME_TYPES

State = Literal["active", "pending", "failed"]
Source = Literal["folder", "console"]
SMALL_LIMIT = 1000  # bytes: tests upload a file over it with a few literal bytes


@dataclass(frozen=True, slots=True)
class Uploaded:
    business: str
    filename: str
    data: bytes
    mime_type: str


class MemoryKnowledgeData:
    """Thread-safe: a browser test reads and changes it while the server's thread uses it."""

    def __init__(
        self,
        businesses: Collection[str] = ("Padaria Central",),
        *,
        max_bytes: int = SMALL_LIMIT,
        allowed: Mapping[str, str] = MIME_TYPES,
        upload_state: State = "active",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._businesses = list(businesses)
        self._documents: dict[str, list[KnowledgeDocument]] = {b: [] for b in businesses}
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1_000_000))
        self.max_bytes = max_bytes
        self.allowed = allowed
        self.upload_state: State = upload_state
        self.clock = clock
        self.unreachable: str | None = None  # a reason: every call raises KnowledgeRefused
        self.refuse_uploads: str | None = None  # a reason: uploads raise KnowledgeRefused
        self.uploads: list[Uploaded] = []
        self.deleted: list[tuple[str, str]] = []  # (business, document name)

    # -- what tests do -----------------------------------------------------------------------

    def add_document(
        self,
        title: str,
        *,
        business: str | None = None,
        state: State = "active",
        source: Source = "folder",
        size_bytes: int = 1234,
        created: float | None = None,  # None: now
        undated: bool = False,  # Google gave no creation time
    ) -> KnowledgeDocument:
        business = business or self._businesses[0]
        with self._lock:
            store = f"fileSearchStores/store-{self._businesses.index(business)}"
            name = f"{store}/documents/d{next(self._ids)}"
            at = None if undated else self.clock() if created is None else created
            document = KnowledgeDocument(name, title, state, size_bytes, at, source)
            self._documents[business].append(document)
            return document

    def set_state(self, title: str, state: State) -> None:
        with self._lock:
            for documents in self._documents.values():
                documents[:] = [
                    replace(d, state=state) if d.title == title else d for d in documents
                ]

    def titles(self, business: str | None = None) -> list[str]:
        with self._lock:
            return [d.title for d in self._documents[business or self._businesses[0]]]

    # -- KnowledgeData -----------------------------------------------------------------------

    def business_names(self) -> list[str]:
        return list(self._businesses)

    def max_upload_bytes(self) -> int:
        return self.max_bytes

    def allowed_types(self) -> Mapping[str, str]:
        return self.allowed

    async def documents(self, business: str) -> list[KnowledgeDocument]:
        self._reachable()
        with self._lock:
            return list(self._documents[business])

    async def upload(self, business: str, filename: str, data: bytes, mime_type: str) -> None:
        self._reachable()
        if self.refuse_uploads is not None:
            raise KnowledgeRefused(self.refuse_uploads)
        with self._lock:
            self.uploads.append(Uploaded(business, filename, data, mime_type))
        self.add_document(
            filename,
            business=business,
            state=self.upload_state,
            source="console",
            size_bytes=len(data),
        )

    async def delete(self, business: str, document_name: str) -> None:
        self._reachable()
        with self._lock:
            documents = self._documents[business]
            if not any(d.name == document_name for d in documents):
                raise KnowledgeRefused("That document is not in this business's store.")
            documents[:] = [d for d in documents if d.name != document_name]
            self.deleted.append((business, document_name))

    def _reachable(self) -> None:
        if self.unreachable is not None:
            raise KnowledgeRefused(self.unreachable)
