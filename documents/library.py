"""Each business's documents kept in step: its store found or made, the folder synchronised
under a lock, the console's uploads and deletions, and the count that answers check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from documents.filesearch import (
    DEFAULT_POLLING,
    Document,
    KnowledgeError,
    Polling,
    delete_document,
    document_metadata,
    list_documents,
    upload_document,
)
from documents.sync import (
    FileResult,
    SyncReport,
    ensure_store,
    scan,
    synchronise,
)
from domain.businesses import DEFAULT_BUSINESS, DEFAULT_KNOWLEDGE_DIR, Business
from domain.costs import NOTHING_USED, Prices, indexing_use
from ops.logs import short_hash
from storage.store import Store

if TYPE_CHECKING:
    from google import genai

log = logging.getLogger(__name__)


def has_files(folder: Path) -> bool:
    """Whether a knowledge folder holds a file worth uploading (a missing folder holds none)."""
    try:
        return any(not isinstance(entry, FileResult) for entry in scan(folder))
    except (OSError, KnowledgeError):
        return False


def folder_missing(business: Business, kept: int) -> None:
    """Say that a business's folder does not exist (most often a mistyped path), unless it is
    the default `./knowledge` of a deployment that never had one: no documents, nothing said.
    `kept`: the documents uploaded from it before, which stay."""
    if kept == 0 and business.knowledge_dir == DEFAULT_KNOWLEDGE_DIR:
        return
    whose = "" if business.name == DEFAULT_BUSINESS else f" of {business.name}"
    if kept:
        outcome = f"the {kept} document(s){whose} uploaded from it are kept"
        remedy = "correct the path, or create the folder (an empty folder removes them)"
    else:
        outcome = f"there are no documents{whose} from a folder"
        remedy = "correct the path, or create the folder"
    log.warning(
        "%s %s does not exist: %s; %s",
        business.knowledge_setting,
        business.knowledge_dir.absolute(),
        outcome,
        remedy,
    )


class _Registry:
    """documents.sync's StoreRegistry over the database, for one business number."""

    def __init__(self, store: Store, phone_number_id: str) -> None:
        self._store = store
        self._number = phone_number_id

    async def get(self, business: str) -> str | None:
        found = await self._store.knowledge.get(self._number)
        return found.store_name if found else None

    async def set(self, business: str, store_name: str) -> None:
        await self._store.knowledge.register(self._number, store_name)


class Library:
    """The documents of every business of the deployment, through one google-genai client."""

    def __init__(
        self,
        client: genai.Client,
        store: Store,
        polling: Polling = DEFAULT_POLLING,
        *,
        prices: Prices | None = None,
    ) -> None:
        """`prices`: what indexing is counted at in the day's spend (None: its tokens only)."""
        self._client = client
        self._store = store
        self._polling = polling
        self._prices = prices

    async def synchronise(
        self, business: Business, progress: Callable[[FileResult], None] | None = None
    ) -> SyncReport | None:
        """The business's folder into its store (made on first use), one instance at a time;
        None when there is nothing to do: no files and no store yet, or no folder at all
        (whose documents stay: an empty folder is how to remove them)."""
        async with self._store.knowledge.locked(business.phone_number_id):
            known = await self._store.knowledge.get(business.phone_number_id)
            if not await asyncio.to_thread(business.knowledge_dir.exists):
                kept = await self._folder_documents(known.store_name) if known else 0
                folder_missing(business, kept)
                return None
            if known is None and not has_files(business.knowledge_dir):
                return None
            name = await self._store_name(business)
            report = await synchronise(
                self._client,
                name,
                business.knowledge_dir,
                progress=progress,
                polling=self._polling,
            )
            await self._recount(business, name)
            uploaded = [r.size for r in report.results if r.action == "uploaded"]
            await self._count_indexing(business, uploaded)
            log.info("knowledge of %s synchronised: %s", business.name, report.summary())
            return report

    async def documents(self, business: Business) -> list[Document]:
        known = await self._store.knowledge.get(business.phone_number_id)
        if known is None:
            return []
        return await list_documents(self._client, known.store_name)

    async def upload(self, business: Business, filename: str, data: bytes, mime_type: str) -> None:
        """An operator's document: kept until deleted, whatever the folder holds."""
        async with self._store.knowledge.locked(business.phone_number_id):
            name = await self._store_name(business)
            await upload_document(
                self._client,
                name,
                data,
                display_name=filename,
                mime_type=mime_type,
                metadata=document_metadata(data, "console"),
                polling=self._polling,
            )
            await self._recount(business, name)
            await self._count_indexing(business, [len(data)])
        log.info("document %s uploaded for %s", short_hash(filename), business.name)

    async def delete(self, business: Business, document_name: str) -> None:
        known = await self._store.knowledge.get(business.phone_number_id)
        if known is None or not document_name.startswith(known.store_name + "/"):
            raise KnowledgeError("That document is not one of this business's.")
        async with self._store.knowledge.locked(business.phone_number_id):
            await delete_document(self._client, document_name)
            await self._recount(business, known.store_name)

    async def _count_indexing(self, business: Business, sizes: list[int]) -> None:
        """Documents File Search indexed, in the business's spend for the day: Google bills
        their embedding, and does not say how many tokens it was (estimated from the size)."""
        use = sum((indexing_use(size) for size in sizes), NOTHING_USED)
        if not use.embedding:
            return
        cost = use.cost(self._prices) if self._prices is not None else 0.0
        try:
            await self._store.usage.indexed(business.phone_number_id, use, cost)
        except Exception as exc:  # the documents are in: counting them must not undo that
            log.warning("indexing of %s not counted: %s", business.name, type(exc).__name__)

    async def _folder_documents(self, store_name: str) -> int:
        documents = await list_documents(self._client, store_name)
        return sum(1 for document in documents if document.source == "folder")

    async def _store_name(self, business: Business) -> str:
        registry = _Registry(self._store, business.phone_number_id)
        return await ensure_store(self._client, registry, business.name)

    async def _recount(self, business: Business, store_name: str) -> None:
        """How many usable documents the store holds: answers search it only when some."""
        documents = await list_documents(self._client, store_name)
        usable = sum(1 for document in documents if document.state != "failed")
        await self._store.knowledge.count(business.phone_number_id, usable)
