"""A document uploaded on the Knowledge page: streamed into memory and refused as soon as its
size or type is wrong (never written to a file), then handed to the library in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from console.languages import ENGLISH, N_, Language
from documents.filesearch import KnowledgeError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

    from documents.library import Library
    from domain.businesses import Business

log = logging.getLogger("console")

FIELD = b"document"  # the form's file input
FORM_BYTES = 16 * 1024  # what a form adds around its file: boundaries, part headers
MAX_FILENAME = 255  # characters, as most file systems allow
NO_FILE = N_("Choose a document to upload first.")
NOT_A_FORM = N_("Not uploaded: the upload did not arrive as a form with one document.")
CUT_SHORT = N_("Not uploaded: the upload was cut short. Try again.")


def human_size(size: int) -> str:
    """Bytes as a person reads them in English (a page says them in its own language)."""
    return ENGLISH.size(size)


class UploadProblem(Exception):
    """Why an upload is refused before anything is handed on: `reason` for the operator (a
    msgid, with its `values` and the `limit` in bytes said as a size), `kind` for the log (which
    never names the file); "size" answers 413."""

    def __init__(self, kind: str, reason: str, limit: int | None = None, **values: object) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.limit = limit
        self.values = values

    def text(self, language: Language) -> str:
        """The reason in the page's language."""
        size = {} if self.limit is None else {"size": language.size(self.limit)}
        return language.gettext(self.reason, **self.values, **size)

    @property
    def too_large(self) -> bool:
        return self.kind == "size"


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    mime_type: str
    data: bytes


def too_large(limit: int) -> UploadProblem:
    return UploadProblem("size", N_("Not uploaded: a document can be at most %(size)s."), limit)


def clean_filename(raw: bytes) -> str:
    """The file's own name: no folders, no control characters."""
    name = raw.decode("utf-8", errors="replace").replace("\\", "/")
    return "".join(c for c in PurePosixPath(name).name if c.isprintable()).strip()


def mime_type_of(filename: str, allowed: Mapping[str, str]) -> str:
    """The MIME type for the file's extension, from the table (never what the browser said)."""
    extension = PurePosixPath(filename).suffix.lower()
    if extension not in allowed:
        accepted = ", ".join(sorted(allowed))
        if not extension:
            reason = N_(
                "Not uploaded: a file without an extension cannot be read. "
                "Upload one of %(accepted)s."
            )
            raise UploadProblem("type", reason, accepted=accepted)
        reason = N_("Not uploaded: %(extension)s files cannot be read. Upload one of %(accepted)s.")
        raise UploadProblem("type", reason, extension=extension, accepted=accepted)
    return allowed[extension]


class FilePart:
    """python-multipart's callbacks: the part `document` kept in memory, refused as soon as its
    name or its size is wrong; other parts are ignored."""

    def __init__(self, limit: int, allowed: Mapping[str, str]) -> None:
        self.limit, self.allowed = limit, allowed
        self.header, self.value, self.disposition = bytearray(), bytearray(), b""
        self.filename: str | None = None
        self.mime_type = ""
        self.receiving = self.received = self.ended = False
        self.data = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self.header.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self.value.extend(data[start:end]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.disposition = b""

    def on_header_end(self) -> None:
        if bytes(self.header).strip().lower() == b"content-disposition":
            self.disposition = bytes(self.value)
        self.header.clear()
        self.value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if options.get(b"name") != FIELD or b"filename" not in options:
            return
        if self.filename is not None:
            raise UploadProblem("form", N_("Not uploaded: upload one document at a time."))
        self.filename = clean_filename(options[b"filename"])
        if not self.filename:
            raise UploadProblem("none", NO_FILE)
        if len(self.filename) > MAX_FILENAME:
            reason = N_("Not uploaded: a file name can have at most %(max)s characters.")
            raise UploadProblem("name", reason, max=MAX_FILENAME)
        self.mime_type = mime_type_of(self.filename, self.allowed)  # before any of its bytes
        self.receiving = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.receiving:
            if len(self.data) + end - start > self.limit:
                raise too_large(self.limit)
            self.data.extend(data[start:end])

    def on_part_end(self) -> None:
        self.received = self.received or self.receiving
        self.receiving = False

    def on_end(self) -> None:
        self.ended = True


def boundary_of(request: Request, limit: int) -> bytes:
    """The form's boundary, once the headers say it is a form no larger than a document of
    `limit` bytes can make."""
    kind, options = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadProblem("form", NOT_A_FORM)
    length = request.headers.get("content-length")
    if length is not None and not length.isdigit():
        raise UploadProblem("form", NOT_A_FORM)
    if length is not None and int(length) > limit + FORM_BYTES:
        raise too_large(limit)
    return options[b"boundary"]


async def read_upload(request: Request, limit: int, allowed: Mapping[str, str]) -> Upload:
    """The one document of a multipart form, refused by its Content-Length first, then while
    its bytes arrive: at most `limit` of them, kept in memory (python-multipart's streaming
    parser over the request stream; Starlette's `request.form()` spools files to disk and
    limits only the other fields)."""
    budget = limit + FORM_BYTES
    part = FilePart(limit, allowed)
    try:
        parser = MultipartParser(boundary_of(request, limit), part.callbacks())
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > budget:  # no Content-Length, or a wrong one
                raise too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except FormParserError as error:
        raise UploadProblem("form", NOT_A_FORM) from error
    except ClientDisconnect as error:
        raise UploadProblem("cut", CUT_SHORT) from error
    if not part.ended:
        raise UploadProblem("cut", CUT_SHORT)
    if part.filename is None or not part.received:
        raise UploadProblem("none", NO_FILE)
    if not part.data:
        raise UploadProblem("empty", N_("Not uploaded: %(name)s is empty."), name=part.filename)
    return Upload(part.filename, part.mime_type, bytes(part.data))


@dataclass(frozen=True, slots=True)
class Incoming:
    """An upload on its way to File Search, which may not list it yet (nor have the business's
    store yet, on its first document)."""

    business: str
    filename: str
    size_bytes: int
    started: float  # epoch seconds


class Uploads:
    """Documents on their way to File Search: the page answers at once and lists an upload as
    Processing until Gemini is done with it; shutdown waits for those under way."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[None], Incoming] = {}

    def start(self, library: Library, business: Business, upload: Upload) -> None:
        task = asyncio.create_task(self._upload(library, business, upload))
        self._tasks[task] = Incoming(business.name, upload.filename, len(upload.data), time.time())
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    def under_way(self, business: str) -> list[Incoming]:
        """The business's uploads not done yet, the oldest first."""
        return [i for t, i in self._tasks.items() if i.business == business and not t.done()]

    async def _upload(self, library: Library, business: Business, upload: Upload) -> None:
        try:
            await library.upload(business, upload.filename, upload.data, upload.mime_type)
        except KnowledgeError as exc:
            log.warning("a console upload for %s failed: %s", business.name, exc.reason)
        except Exception:  # a background task: nobody else would see it
            log.exception("a console upload for %s failed", business.name)

    async def wait(self) -> None:
        """Until the uploads under way are done (shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks))
