"""The Knowledge page's data from Gemini File Search, through the deployment's library."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from config import Settings
from console.knowledge_data import KnowledgeDocument, KnowledgeRefused
from documents.filesearch import Document, KnowledgeError
from documents.library import Library
from documents.sync import MAX_FILE_BYTES, MIME_TYPES
from domain.businesses import Business

log = logging.getLogger(__name__)


def _listed(document: Document) -> KnowledgeDocument:
    created = document.created.timestamp() if document.created else None
    return KnowledgeDocument(
        name=document.name,
        title=document.display_name,
        state=document.state,
        size_bytes=document.size_bytes,
        created=created,
        source=document.source,
    )


class LibraryKnowledgeData:
    """KnowledgeData over the Library; an upload is processed in the background, so the page
    answers at once and shows the document as Processing until Gemini is done with it."""

    def __init__(self, settings: Settings, library: Library) -> None:
        self._settings = settings
        self._library = library
        self._uploads: set[asyncio.Task[None]] = set()

    def business_names(self) -> list[str]:
        return self._settings.businesses.names()

    def max_upload_bytes(self) -> int:
        return MAX_FILE_BYTES

    def allowed_types(self) -> Mapping[str, str]:
        return MIME_TYPES

    def _business(self, name: str) -> Business:
        business = self._settings.businesses.named(name)
        if business is None:
            raise KnowledgeRefused("No business of this deployment has that name.")
        return business

    async def documents(self, business: str) -> list[KnowledgeDocument]:
        try:
            found = await self._library.documents(self._business(business))
        except KnowledgeError as exc:
            raise KnowledgeRefused(
                f"Gemini File Search could not be reached: {exc.reason}"
            ) from exc
        return [_listed(document) for document in found]

    async def upload(self, business: str, filename: str, data: bytes, mime_type: str) -> None:
        chosen = self._business(business)
        task = asyncio.create_task(self._upload(chosen, filename, data, mime_type))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)

    async def _upload(self, business: Business, filename: str, data: bytes, mime: str) -> None:
        try:
            await self._library.upload(business, filename, data, mime)
        except KnowledgeError as exc:
            log.warning("a console upload for %s failed: %s", business.name, exc.reason)
        except Exception:  # a background task: nobody else would see it
            log.exception("a console upload for %s failed", business.name)

    async def uploads_done(self) -> None:
        """Wait for the uploads under way (shutdown, tests)."""
        if self._uploads:
            await asyncio.wait(set(self._uploads))

    async def delete(self, business: str, document_name: str) -> None:
        try:
            await self._library.delete(self._business(business), document_name)
        except KnowledgeError as exc:
            raise KnowledgeRefused(f"Gemini File Search refused: {exc.reason}") from exc
