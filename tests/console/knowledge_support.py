"""Shared pieces of the Knowledge page's tests: the app over the fake File Search with the admin
signed in, documents put in a business's store as Google (or a folder's sync) would, what the
page handed on, and multipart bodies written out by hand (to send them in chunks, or with a
chosen Content-Length)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from console_apps import ADMIN_PASSWORD, Console, Served, Tenant, console_app
from console_support import signed_in
from respx_upstreams import FakeUpstreams

PAGE = "/console/knowledge"
UPLOAD = "/console/knowledge/upload"
DELETE = "/console/knowledge/delete"
BOUNDARY = "----knowledge-test-boundary-7f3a"
BAKERY = "Padaria Central"
SMALL_LIMIT = 1000  # bytes: tests upload a file over it with a few literal bytes
STATES = {"active": "STATE_ACTIVE", "pending": "STATE_PENDING", "failed": "STATE_FAILED"}

State = Literal["active", "pending", "failed"]
App = Console | Served  # the app in this process, or behind uvicorn (run these on its loop)


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A document the page handed to the library, as it arrived in File Search."""

    business: str
    filename: str
    data: bytes
    mime_type: str


@asynccontextmanager
async def knowledge_console(
    database_url: str,
    fakes: FakeUpstreams,
    *,
    businesses: Sequence[Tenant | str] = (BAKERY,),
    max_bytes: int = SMALL_LIMIT,
    **overrides: Any,
) -> AsyncIterator[Console]:
    """The app over the (fake) File Search, uploads processed at once, the admin signed in."""
    fakes.file_search.polls_until_done = 0
    async with console_app(database_url, fakes, businesses=businesses, **overrides) as console:
        console.state.max_upload_bytes = max_bytes
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        yield console


def _number(console: App, business: str) -> str:
    found = console.settings.businesses.named(business)
    assert found is not None, business
    return found.phone_number_id


async def store_name(console: App, business: str = BAKERY) -> str | None:
    """The business's File Search store, as the database knows it."""
    known = await console.store.knowledge.get(_number(console, business))
    return known.store_name if known else None


async def add_document(
    console: App,
    title: str,
    *,
    business: str = BAKERY,
    state: State = "active",
    source: Literal["folder", "console"] = "folder",
    size_bytes: int = 1234,
    created: float | None = None,  # None: now
    undated: bool = False,  # Google gives no creation time
) -> str:
    """A document in the business's store (made and registered on first use); its name."""
    name = await store_name(console, business)
    if name is None:
        name = console.fakes.file_search.add_store(business)
        await console.store.knowledge.register(_number(console, business), name)
    content = b"x" * size_bytes
    metadata = {"sha256": hashlib.sha256(content).hexdigest(), "source": source}
    fake = console.fakes.file_search
    document = fake.add_document(name, title, content, metadata=metadata, state=STATES[state])
    if undated or created is not None:
        [found] = [d for d in fake.documents(name) if d.name == document]
        stamp = None if undated else datetime.fromtimestamp(created or 0, UTC)
        found.create_time = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if stamp else None
    return document


async def set_state(console: App, title: str, state: State, business: str = BAKERY) -> None:
    """Google finished (or failed) processing the document."""
    name = await store_name(console, business)
    assert name is not None
    for document in console.fakes.file_search.documents(name):
        if document.display_name == title:
            document.state = STATES[state]


async def titles(console: App, business: str = BAKERY) -> list[str]:
    name = await store_name(console, business)
    return [d.display_name for d in console.fakes.file_search.documents(name)] if name else []


async def uploaded(console: App) -> list[Uploaded]:
    """What reached File Search from the page, once the uploads under way are done."""
    await console.state.uploads.wait()
    found = []
    for business in console.settings.businesses:
        name = await store_name(console, business.name)
        for document in console.fakes.file_search.documents(name) if name else []:
            if document.metadata.get("source") == "console":
                found.append(
                    Uploaded(
                        business.name, document.display_name, document.content, document.mime_type
                    )
                )
    return found


def upload_requests(fakes: FakeUpstreams) -> list[str]:
    """Every upload File Search was sent, by its path (none: nothing was handed on)."""
    return [c.path for c in fakes.file_search.calls_to("POST", ":uploadToFileSearchStore")]


def deleted(fakes: FakeUpstreams) -> list[str]:
    """The documents File Search was asked to delete, by name."""
    return [
        call.path.split("/", 2)[2] for call in fakes.file_search.calls_to("DELETE", "/documents/")
    ]


def form_body(
    filename: str,
    data: bytes,
    *,
    field: str = "document",
    content_type: str = "application/octet-stream",
) -> bytes:
    """A multipart/form-data body with one file part, as a browser sends it."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def form_headers(**extra: str) -> dict[str, str]:
    return {"content-type": f"multipart/form-data; boundary={BOUNDARY}", **extra}


class Chunks:
    """A request body sent in pieces, counting how many the app asked for."""

    def __init__(self, body: bytes, size: int) -> None:
        self.pieces = [body[i : i + size] for i in range(0, len(body), size)]
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            self.sent += 1
            yield piece
