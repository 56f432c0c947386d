"""Shared pieces of the console's tests: settings, an app with the in-memory data, a movable
clock, cheap password hashes, signing in, and the same app served by a real uvicorn."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher
from fake_upstreams import free_port
from fastapi import FastAPI
from helpers import make_settings
from memory_data import MemoryConsoleData
from running import wait_for

from config import Settings
from console.passwords import Passwords
from main import create_app
from storage.store import Store

ADMIN_PASSWORD = "admin-secret-4e7b"
OPERATOR_PASSWORD = "operator-secret-91c2"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class Clock:
    """The console's clock: the real time, which a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def cheap_passwords() -> Passwords:
    """Argon2id with the smallest cost, so that tests do not wait a tenth of a second per hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def console_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings with the console on; nothing answers (no upstream is called: the shop's
    name is set, so Meta is not asked for it)."""
    values: dict[str, Any] = {
        "console_password": ADMIN_PASSWORD,
        "external_workers": True,
        "business_name": "Quitanda da Vila",
    }
    values.update(overrides)
    return make_settings(database_url, **values)


def build_app(
    settings: Settings, data: MemoryConsoleData | None, clock: Clock, passwords: Passwords | None
) -> FastAPI:
    app = create_app(settings, console_data=data)
    if settings.console_enabled:
        app.state.console.clock = clock
        app.state.console.passwords = passwords or cheap_passwords()
    return app


@dataclass
class Console:
    """A started app with the console, an ASGI client, its data and its clock."""

    app: FastAPI
    client: httpx.AsyncClient
    data: MemoryConsoleData
    clock: Clock

    @property
    def store(self) -> Store:
        store: Store = self.app.state.services.store
        return store

    def client_from(self, address: str, base_url: str = "http://testserver") -> httpx.AsyncClient:
        """Another browser, at another client address (close it yourself)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        return httpx.AsyncClient(transport=transport, base_url=base_url)


@asynccontextmanager
async def console_app(
    database_url: str,
    data: MemoryConsoleData | None = None,
    *,
    base_url: str = "http://testserver",
    passwords: Passwords | None = None,
    **overrides: Any,
) -> AsyncIterator[Console]:
    clock = Clock()
    data = data if data is not None else MemoryConsoleData(clock=clock)
    app = build_app(console_settings(database_url, **overrides), data, clock, passwords)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield Console(app, client, data, clock)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str, **headers: str
) -> httpx.Response:
    return await client.post(
        "/console/login",
        data={"username": username, "password": password},
        headers=headers,
    )


async def signed_in(client: httpx.AsyncClient, username: str, password: str) -> None:
    response = await sign_in(client, username, password)
    assert response.status_code == 303, response.text
    assert "console_session" in client.cookies


async def add_operator(console: Console, username: str, businesses: list[str]) -> int:
    """An operator made through the admin's page; returns their id."""
    response = await console.client.post(
        "/console/operators",
        data={"username": username, "password": OPERATOR_PASSWORD, "businesses": businesses},
    )
    assert response.status_code == 303
    operators = await console.store.operators.all()
    return next(o.id for o in operators if o.username == username.strip().lower())


CONVERSATION_PAGES = ["/console/conversations/{id}", "/console/live/conversations/{id}"]
PAGES = ["/console", "/console/live/list", "/console/operators", *CONVERSATION_PAGES]
ACTIONS = [
    "/console/conversations/{id}/take-over",
    "/console/conversations/{id}/hand-back",
    "/console/conversations/{id}/reply",
    "/console/conversations/{id}/template",
    "/console/operators",
    "/console/operators/{operator}",
    "/console/operators/{operator}/remove",
    "/console/logout",
]
SECRET_NAME = "Beatriz Secreta"
SECRET_TEXT = "my order number is 4471"


def with_conversation(data: MemoryConsoleData) -> int:
    conversation = data.add_conversation(name=SECRET_NAME, number="5511988887777")
    data.add_entry(conversation, "user", SECRET_TEXT)
    return conversation


def fill(path: str, conversation: int, operator: int = 2) -> str:
    return path.format(id=conversation, operator=operator)


def set_cookie_header(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def cookie_flags(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")[1:]]
    pairs = [(*p.split("=", 1), "")[:2] for p in parts]
    return {name.lower(): value for name, value in pairs}


def assert_console_headers(response: httpx.Response, *, page: bool = True) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    if page:
        assert response.headers["cache-control"] == "no-store"


def visible_text(html: str) -> str:
    """The page's text as a person reads it: tags dropped, entities left as written."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------------------------------------
# A real uvicorn, in a thread of this process, for the browser tests


@dataclass
class Served:
    url: str
    app: FastAPI
    data: MemoryConsoleData
    clock: Clock


@contextmanager
def served_console(
    database_url: str, data: MemoryConsoleData, **overrides: Any
) -> Iterator[Served]:
    """The app with the console behind uvicorn on 127.0.0.1 (proxy headers trusted, as in the
    Dockerfile), in a background thread with its own event loop."""
    clock = Clock()
    app = build_app(console_settings(database_url, **overrides), data, clock, None)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="*",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 30, "the console's server")
        assert server.started, "uvicorn did not start"
        yield Served(f"http://127.0.0.1:{port}", app, data, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
