"""Synchronise a business's knowledge folder with its Gemini File Search store."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, Protocol

from documents.filesearch import (
    DEFAULT_POLLING,
    MAX_DISPLAY_NAME,
    Document,
    KnowledgeError,
    Polling,
    create_store,
    delete_document,
    document_metadata,
    list_documents,
    upload_document,
)

if TYPE_CHECKING:
    from google import genai

log = logging.getLogger(__name__)

Action = Literal["uploaded", "unchanged", "deleted", "failed", "skipped"]

MAX_FILE_BYTES = 100 * 1000 * 1000  # File Search refuses documents over 100 MB

# The file types Gemini File Search reads, by extension. Text-like files whose own MIME
# type File Search may not list (YAML, logs) go as plain text, which it always reads.
MIME_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".pdf": "application/pdf",
        ".txt": "text/plain",
        ".text": "text/plain",
        ".log": "text/plain",
        ".yaml": "text/plain",
        ".yml": "text/plain",
        ".md": "text/markdown",
        ".markdown": "text/markdown",
        ".html": "text/html",
        ".htm": "text/html",
        ".csv": "text/csv",
        ".tsv": "text/tab-separated-values",
        ".json": "application/json",
        ".xml": "text/xml",
        ".rtf": "text/rtf",
        ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)


@dataclass(frozen=True, slots=True)
class FileResult:
    """What synchronising did with one file (`path` relative to the folder, with `/`)."""

    path: str
    size: int
    action: Action
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SyncReport:
    results: list[FileResult]

    def count(self, action: Action) -> int:
        return sum(1 for result in self.results if result.action == action)

    @property
    def uploaded(self) -> int:
        return self.count("uploaded")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")

    @property
    def deleted(self) -> int:
        return self.count("deleted")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    def summary(self) -> str:
        """For logs: `2 uploaded, 5 unchanged, 1 deleted, 0 failed, 1 skipped`."""
        actions: tuple[Action, ...] = ("uploaded", "unchanged", "deleted", "failed", "skipped")
        return ", ".join(f"{self.count(action)} {action}" for action in actions)


class StoreRegistry(Protocol):
    """Where each business's store name is kept (the database, for the app)."""

    async def get(self, business: str) -> str | None: ...

    async def set(self, business: str, store_name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: str  # relative to the folder, with `/`: the document's display name
    location: Path
    size: int
    mime_type: str


def store_display_name(business: str) -> str:
    """The display name of a business's store, as shown in AI Studio."""
    return f"WhatsApp assistant: {business.strip() or 'business'}"[:MAX_DISPLAY_NAME]


async def ensure_store(client: genai.Client, registry: StoreRegistry, business: str) -> str:
    """The business's store name: the registered one, or a new store now registered.

    Callers hold the same lock as around `synchronise` (a database lock across instances),
    or two instances starting together may each create a store.
    """
    existing = await registry.get(business)
    if existing:
        return existing
    store = await create_store(client, store_display_name(business))
    await registry.set(business, store.name)
    log.info("created File Search store %s for business %r", store.name, business)
    return store.name


async def synchronise(
    client: genai.Client,
    store_name: str,
    folder: Path,
    *,
    progress: Callable[[FileResult], None] | None = None,
    concurrency: int = 4,
    polling: Polling = DEFAULT_POLLING,
) -> SyncReport:
    """Make the store's folder documents match the folder's files; what happened to each.

    New and changed files are uploaded (display name = path relative to the folder, custom
    metadata `sha256` and `source` = "folder") and each upload is awaited until Gemini has
    processed it; a changed file's previous document is deleted only after its new one is
    in. Documents of files that are gone are deleted; documents with source "console" are
    never touched; unchanged files upload nothing. Hidden files and folders are ignored,
    other types than `MIME_TYPES` are reported as skipped, files over 100 MB as failed. An
    empty folder deletes every folder document; a missing one raises `KnowledgeError` and
    deletes nothing (a mistyped path must not empty the store).

    One file's failure is reported in its `FileResult` and the others go on; only a store
    that cannot be listed, or a folder that cannot be read, raises `KnowledgeError`.
    `progress` (which must not raise) gets each result as it happens. Callers hold a lock
    around this call (a database lock for several instances): two synchronisations of one
    store at once would upload twice. Up to `concurrency` files are read into memory and
    uploaded at once.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not await asyncio.to_thread(folder.exists):
        raise KnowledgeError(f"{folder} does not exist: nothing was uploaded or deleted")
    entries = await asyncio.to_thread(scan, folder)
    by_path = _folder_documents(await list_documents(client, store_name))
    results: list[FileResult] = []

    def report(result: FileResult) -> None:
        results.append(result)
        if result.action == "failed":
            log.warning("knowledge %s failed: %s", result.path, result.reason)
        if progress is not None:
            progress(result)

    present = {entry.path for entry in entries if not _is_skipped(entry)}
    gone = [doc for path, docs in by_path.items() if path not in present for doc in docs]
    jobs: list[tuple[str, int, Awaitable[FileResult]]] = []
    for entry in entries:
        if isinstance(entry, FileResult):
            report(entry)
        else:
            work = _sync_file(client, store_name, entry, by_path.get(entry.path, []), polling)
            jobs.append((entry.path, entry.size, work))
    jobs += [(doc.display_name, doc.size_bytes, _delete_gone(client, doc)) for doc in gone]
    await _run(jobs, concurrency, report)
    log.info("knowledge synchronised with %s: %s", store_name, SyncReport(results).summary())
    return SyncReport(sorted(results, key=lambda result: (result.path, result.action)))


def scan(folder: Path) -> list[LocalFile | FileResult]:
    """The folder's files, recursively, hidden ones left out; a result for those refused.

    A sub-folder that cannot be read fails the whole scan rather than pass for empty, which
    would delete its documents.
    """
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise KnowledgeError(f"{folder} is not a folder")
    entries: list[LocalFile | FileResult] = []
    try:
        for root, dirs, names in os.walk(folder, onerror=_raise):
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            for name in sorted(names):
                if not name.startswith("."):
                    entries.append(_classify(folder, Path(root) / name))
    except OSError as exc:
        raise KnowledgeError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    return entries


def _raise(exc: OSError) -> None:
    raise exc


def _classify(folder: Path, location: Path) -> LocalFile | FileResult:
    path = location.relative_to(folder).as_posix()
    try:
        if not location.is_file():
            return FileResult(path, 0, "skipped", "not a regular file")
        size = location.stat().st_size
    except OSError as exc:
        return FileResult(path, 0, "failed", f"unreadable: {exc.strerror or type(exc).__name__}")
    mime_type = MIME_TYPES.get(location.suffix.lower())
    if mime_type is None:
        kind = f"file type {location.suffix}" if location.suffix else "file without an extension"
        return FileResult(path, size, "skipped", f"unsupported {kind}")
    if size == 0:
        return FileResult(path, 0, "skipped", "empty file")
    if size > MAX_FILE_BYTES:
        return FileResult(path, size, "failed", "larger than 100 MB, the File Search limit")
    if len(path) > MAX_DISPLAY_NAME:
        return FileResult(path, size, "failed", f"path longer than {MAX_DISPLAY_NAME} characters")
    return LocalFile(path, location, size, mime_type)


def _is_skipped(entry: LocalFile | FileResult) -> bool:
    """Skipped files have no document to keep; failed ones keep theirs until they upload."""
    return isinstance(entry, FileResult) and entry.action == "skipped"


def _folder_documents(documents: Sequence[Document]) -> dict[str, list[Document]]:
    """The documents synchronising owns, by display name, active ones first."""
    by_path: dict[str, list[Document]] = {}
    for document in documents:
        if document.source == "folder":
            by_path.setdefault(document.display_name, []).append(document)
    for docs in by_path.values():
        docs.sort(key=lambda doc: doc.state != "active")
    return by_path


async def _run(
    jobs: Sequence[tuple[str, int, Awaitable[FileResult]]],
    concurrency: int,
    report: Callable[[FileResult], None],
) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(path: str, size: int, work: Awaitable[FileResult]) -> None:
        async with semaphore:
            try:
                result = await work
            except Exception as exc:  # a bug must not stop the other files
                log.exception("knowledge %s: unexpected error", path)
                result = FileResult(
                    path, size, "failed", f"unexpected error ({type(exc).__name__})"
                )
        report(result)

    async with asyncio.TaskGroup() as group:
        for path, size, work in jobs:
            group.create_task(one(path, size, work))


async def _sync_file(
    client: genai.Client,
    store_name: str,
    file: LocalFile,
    documents: Sequence[Document],
    polling: Polling,
) -> FileResult:
    """Upload the file unless a usable document holds the same bytes, then drop the others."""
    try:
        digest = await asyncio.to_thread(_sha256_of, file.location)
    except OSError as exc:
        return _unreadable(file, exc)
    current = [doc for doc in documents if doc.sha256 == digest and doc.state != "failed"]
    if current:
        stale = [doc for doc in documents if doc is not current[0]]
        return await _delete_stale(client, stale, FileResult(file.path, file.size, "unchanged"))
    try:
        data = await asyncio.to_thread(file.location.read_bytes)
    except OSError as exc:
        return _unreadable(file, exc)
    if len(data) > MAX_FILE_BYTES:
        return FileResult(
            file.path, len(data), "failed", "larger than 100 MB, the File Search limit"
        )
    try:
        await upload_document(
            client,
            store_name,
            data,
            display_name=file.path,
            mime_type=file.mime_type,
            metadata=document_metadata(data, "folder"),
            polling=polling,
        )
    except KnowledgeError as exc:
        return FileResult(file.path, len(data), "failed", exc.reason)
    reason = "replaced the previous version" if documents else None
    return await _delete_stale(
        client, documents, FileResult(file.path, len(data), "uploaded", reason)
    )


async def _delete_stale(
    client: genai.Client, stale: Sequence[Document], result: FileResult
) -> FileResult:
    """Delete older versions of a file that is now in the store; `result` if all went."""
    for document in stale:
        try:
            await delete_document(client, document.name)
        except KnowledgeError as exc:
            reason = f"{result.action}, but an older version stays: {exc.reason}"
            return FileResult(result.path, result.size, "failed", reason)
    return result


async def _delete_gone(client: genai.Client, document: Document) -> FileResult:
    try:
        await delete_document(client, document.name)
    except KnowledgeError as exc:
        return FileResult(document.display_name, document.size_bytes, "failed", exc.reason)
    return FileResult(document.display_name, document.size_bytes, "deleted")


def _unreadable(file: LocalFile, exc: OSError) -> FileResult:
    return FileResult(
        file.path, file.size, "failed", f"unreadable: {exc.strerror or type(exc).__name__}"
    )


def _sha256_of(location: Path) -> str:
    with location.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
