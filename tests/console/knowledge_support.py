"""Shared pieces of the Knowledge page's tests: the app given an in-memory KnowledgeData, and
multipart bodies written out by hand (to send them in chunks, or with a chosen Content-Length)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from console_support import (
    ADMIN_PASSWORD,
    OPERATOR_PASSWORD,
    Clock,
    Console,
    add_operator,
    cheap_passwords,
    console_settings,
    signed_in,
)
from memory_data import MemoryConsoleData
from memory_knowledge import MemoryKnowledgeData

from main import create_app

PAGE = "/console/knowledge"
UPLOAD = "/console/knowledge/upload"
DELETE = "/console/knowledge/delete"
BOUNDARY = "----knowledge-test-boundary-7f3a"


@asynccontextmanager
async def knowledge_console(
    database_url: str, knowledge: MemoryKnowledgeData, **overrides: Any
) -> AsyncIterator[Console]:
    """The app through create_app's `knowledge_data`, with the admin signed in; the console's
    data serves the same businesses."""
    clock = Clock()
    data = MemoryConsoleData(knowledge.business_names(), clock=clock)
    settings = console_settings(database_url, **overrides)
    app = create_app(settings, console_data=data, knowledge_data=knowledge)
    app.state.console.clock = clock
    app.state.console.passwords = cheap_passwords()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            console = Console(app, client, data, clock)
            await signed_in(client, "admin", ADMIN_PASSWORD)
            yield console


@asynccontextmanager
async def operator_client(
    console: Console, username: str, businesses: list[str]
) -> AsyncIterator[httpx.AsyncClient]:
    """An operator serving `businesses`, signed in in a browser of their own."""
    await add_operator(console, username, businesses)
    async with console.client_from("192.0.2.20") as client:
        await signed_in(client, username, OPERATOR_PASSWORD)
        yield client


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
