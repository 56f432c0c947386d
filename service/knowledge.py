"""The library as the web process runs it: its own Gemini client, the start-up synchronisation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from config import Settings
from documents.filesearch import KnowledgeError
from documents.library import Library, folder_missing, has_files
from gemini.sdk import genai_client
from llm import gemini_http_client
from storage.store import Store

if TYPE_CHECKING:
    from google import genai

log = logging.getLogger(__name__)


async def uses_documents(settings: Settings, store: Store) -> bool:
    """Whether this deployment may have documents: in a folder, uploaded in the console, or
    in a store already made (from a folder since emptied, whose documents must then go)."""
    return (
        settings.console_enabled
        or any(has_files(b.knowledge_dir) for b in settings.businesses)
        or await store.knowledge.any_store()
    )


async def refuse_web_search_with_documents(settings: Settings, store: Store) -> None:
    """WEB_SEARCH cannot be combined with documents (Gemini refuses such a request)."""
    if settings.web_search and await store.knowledge.any_documents():
        raise RuntimeError(
            "WEB_SEARCH=true cannot be combined with documents: a business has documents in "
            "its File Search store (uploaded in the console, or from its folder). Set "
            "WEB_SEARCH=false, or delete them on the console's Knowledge page"
        )


async def synchronise_all(library: Library, settings: Settings) -> None:
    """Every business's folder into its store; one business's failure stops no other."""
    for business in settings.businesses:
        try:
            await library.synchronise(business)
        except KnowledgeError as exc:
            log.error("knowledge of %s not synchronised: %s", business.name, exc.reason)
        except Exception:  # a background task: nobody else would see it
            log.exception("knowledge of %s not synchronised", business.name)


@contextlib.asynccontextmanager
async def running_library(settings: Settings, store: Store) -> AsyncIterator[Library | None]:
    """The library when documents may be used, else None; with KNOWLEDGE_SYNC=startup the
    folders are synchronised in the background (acknowledging webhooks never waits on it)."""
    await refuse_web_search_with_documents(settings, store)
    if not await uses_documents(settings, store):
        if settings.knowledge_sync == "startup":  # what synchronising would have said
            for business in settings.businesses:
                if not business.knowledge_dir.exists():
                    folder_missing(business, kept=0)  # no store: nothing was uploaded
        yield None
        return
    async with file_search_client(settings) as client:
        library = Library(client, store, prices=settings.prices)
        sync: asyncio.Task[None] | None = None
        if settings.knowledge_sync == "startup":
            sync = asyncio.create_task(synchronise_all(library, settings), name="knowledge-sync")
        try:
            yield library
        finally:
            if sync is not None and not sync.done():
                sync.cancel()
                await asyncio.wait([sync], timeout=5)


@contextlib.asynccontextmanager
async def file_search_client(settings: Settings) -> AsyncIterator[genai.Client]:
    """A google-genai client for File Search, over an HTTP client of its own (uploads are
    long: four times GEMINI_TIMEOUT_SECONDS per request)."""
    timeout = settings.gemini_timeout_seconds * 4
    http = gemini_http_client(timeout, 8)
    client = genai_client(
        api_key=settings.gemini_api_key.get_secret_value(),
        http=http,
        base_url=settings.gemini_base_url,
        timeout_seconds=timeout,
        backoff=settings.backoff(settings.gemini_max_attempts),
    )
    try:
        yield client
    finally:
        await client.aio.aclose()
        await http.aclose()
