"""The app with the console on, for tests: in-process or behind a real uvicorn, over a real
database, its businesses from a tenants file, customers writing through signed webhooks."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from argon2 import PasswordHasher
from fake_upstreams import free_port
from fastapi import FastAPI
from helpers import APP_SECRET, PHONE_NUMBER_ID, make_settings, text_payload
from respx_upstreams import FakeUpstreams
from running import wait_for

from config import Settings
from console.conversations import TranscriptEntry, transcript_entry
from console.passwords import Passwords
from console.web import Console as ConsoleState
from main import create_app
from service.lifespan import Services
from storage.states import Conversation
from storage.store import Store
from webhook.signature import sign

T = TypeVar("T")

ADMIN_PASSWORD = "admin-secret-4e7b"
CUSTOMER = "5511900001111"
_message_ids = itertools.count(1)


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
    """Test settings with the console on; documents only through the console (no folder is
    synchronised at start-up); the shop's name set, so Meta is not asked for it."""
    values: dict[str, Any] = {
        "console_password": ADMIN_PASSWORD,
        "knowledge_sync": "off",
        "business_name": "Quitanda da Vila",
    }
    values.update(overrides)
    return make_settings(database_url, **values)


# ---------------------------------------------------------------------------------------------
# Businesses


@dataclass(frozen=True, slots=True)
class Tenant:
    """One business of a tenants file; its number id and token follow from its place."""

    name: str
    daily_budget_usd: float = 0.0


def number_id(index: int) -> str:
    """The phone number id of a tenants file's `index`-th business: 111111111111111, ..."""
    return str(index + 1) * 15


def token(index: int) -> str:
    return f"console-test-token-{index + 1}"


def tenants_file(folder: Path, businesses: Sequence[Tenant | str]) -> Path:
    """A TENANTS_FILE of these businesses, their tokens in the environment (test values)."""
    lines: list[str] = []
    for index, business in enumerate(businesses):
        tenant = Tenant(business) if isinstance(business, str) else business
        variable = f"CONSOLE_TEST_TOKEN_{index + 1}"
        os.environ[variable] = token(index)
        lines += [
            "[[tenants]]",
            f"name = {json.dumps(tenant.name)}",  # a JSON string is a TOML basic string
            f'phone_number_id = "{number_id(index)}"',
            f'whatsapp_token_env = "{variable}"',
        ]
        if tenant.daily_budget_usd:
            lines.append(f"daily_budget_usd = {tenant.daily_budget_usd}")
    path = folder / "tenants.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def business_settings(folder: Path, businesses: Sequence[Tenant | str]) -> dict[str, Any]:
    """Settings for these businesses alone (none: the one business of PHONE_NUMBER_ID; give
    `phone_number_id` and `whatsapp_token` too for that one beside them, named `default`)."""
    if not businesses:
        return {}
    path = tenants_file(folder, businesses)
    return {"tenants_file": path, "phone_number_id": None, "whatsapp_token": None}


# ---------------------------------------------------------------------------------------------
# Customers


def customer_message(
    text: str,
    *,
    wa_id: str = CUSTOMER,
    name: str | None = "Ana",
    to: str = PHONE_NUMBER_ID,
    user_id: str | None = None,
    ts: int = 0,
) -> Any:
    """A text webhook from a customer (`name` None: no profile name; `wa_id` "": only the
    business-scoped `user_id`) to the business number `to`."""
    payload = copy.deepcopy(text_payload(text, message_id=f"wamid.console-{next(_message_ids)}"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = to
    contact: dict[str, Any] = {"wa_id": wa_id}
    if name is not None:
        contact["profile"] = {"name": name}
    message = value["messages"][0]
    message["from"] = wa_id
    if user_id is not None:
        contact["user_id"] = message["from_user_id"] = user_id
    if ts:
        message["timestamp"] = str(ts)
    value["contacts"] = [contact]
    return payload


def first_number(settings: Settings) -> str:
    """The phone number id of the deployment's first business."""
    return next(iter(settings.businesses)).phone_number_id


def signed(payload: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, APP_SECRET)}


async def conversation_of(store: Store, user: str, to: str = PHONE_NUMBER_ID) -> Conversation:
    """The conversation of `user` (their wa_id, or business-scoped id) with the business `to`."""
    key = f"{to}:{user}"
    listed = await store.transcripts.listed(
        phone_number_ids=[to], state=None, search=None, limit=10_000
    )
    [found] = [c.conversation for c in listed if c.conversation.conversation_key == key]
    return found


async def listed(store: Store, search: str | None = None) -> list[Conversation]:
    """Every conversation as the console lists them, the most recent first."""
    found = await store.transcripts.listed(
        phone_number_ids=None, state=None, search=search, limit=10_000
    )
    return [item.conversation for item in found]


async def transcript(
    store: Store, conversation: Conversation, timeout_hours: float = 24
) -> list[TranscriptEntry]:
    """A conversation's transcript as its console page shows it."""
    entries = await store.transcripts.entries(conversation.conversation_key)
    return [transcript_entry(entry, timeout_hours) for entry in entries]


# ---------------------------------------------------------------------------------------------
# The app in this process, through an ASGI client


def build_app(settings: Settings, clock: Clock, passwords: Passwords | None = None) -> FastAPI:
    app = create_app(settings)
    state: ConsoleState = app.state.console
    state.clock = clock
    state.passwords = passwords or cheap_passwords()
    return app


@dataclass
class Console:
    """A started app with the console, an ASGI client, its clock and the fake upstreams."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock
    fakes: FakeUpstreams

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def state(self) -> ConsoleState:
        state: ConsoleState = self.app.state.console
        return state

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def client_from(self, address: str, base_url: str = "http://testserver") -> httpx.AsyncClient:
        """Another browser, at another client address (close it yourself)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        return httpx.AsyncClient(transport=transport, base_url=base_url)

    async def write(self, text: str, **sender: Any) -> int:
        """A customer writes (see customer_message; to the first business unless `to` says
        otherwise) and the assistant answers; the id of their conversation."""
        sender.setdefault("to", first_number(self.settings))
        payload = customer_message(text, **sender)
        body, headers = signed(payload)
        response = await self.client.post("/webhook", content=body, headers=headers)
        assert response.status_code == 200, response.text
        await asyncio.wait_for(self.services.inline_dispatcher.wait_idle(), 15)
        value = payload["entry"][0]["changes"][0]["value"]
        user = sender.get("user_id") or value["contacts"][0]["wa_id"]
        return (await conversation_of(self.store, user, value["metadata"]["phone_number_id"])).id

    async def conversation(self, conversation_id: int) -> Conversation:
        found = await self.store.states.get(conversation_id)
        assert found is not None
        return found


@asynccontextmanager
async def console_app(
    database_url: str,
    fakes: FakeUpstreams,
    *,
    businesses: Sequence[Tenant | str] = (),
    base_url: str = "http://testserver",
    passwords: Passwords | None = None,
    **overrides: Any,
) -> AsyncIterator[Console]:
    """The app with the console on, over `database_url`, answering in this process."""
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        values = {**business_settings(Path(folder), businesses), **overrides}
        settings = console_settings(database_url, **values)
        app = build_app(settings, clock, passwords)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
                yield Console(app, client, clock, fakes)


# ---------------------------------------------------------------------------------------------
# The same app behind a real uvicorn, in a thread of this process (browser tests)


@dataclass
class Served:
    url: str
    app: FastAPI
    clock: Clock
    fakes: FakeUpstreams
    loop: asyncio.AbstractEventLoop

    @property
    def store(self) -> Store:
        store: Store = self.app.state.services.store
        return store

    @property
    def state(self) -> ConsoleState:
        state: ConsoleState = self.app.state.console
        return state

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Await `coroutine` on the server's event loop (its store's connections live there)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def write(self, text: str, **sender: Any) -> int:
        """Console.write, over HTTP to the server."""
        sender.setdefault("to", first_number(self.settings))
        payload = customer_message(text, **sender)
        body, headers = signed(payload)
        assert httpx.post(f"{self.url}/webhook", content=body, headers=headers).status_code == 200
        services: Services = self.app.state.services
        self.run(services.inline_dispatcher.wait_idle())
        value = payload["entry"][0]["changes"][0]["value"]
        user = sender.get("user_id") or value["contacts"][0]["wa_id"]
        return self.run(conversation_of(self.store, user, value["metadata"]["phone_number_id"])).id

    def conversation(self, conversation_id: int) -> Conversation:
        found = self.run(self.store.states.get(conversation_id))
        assert found is not None
        return found


@contextmanager
def served_console(
    database_url: str,
    fakes: FakeUpstreams,
    *,
    businesses: Sequence[Tenant | str] = (),
    **overrides: Any,
) -> Iterator[Served]:
    """The app behind uvicorn on 127.0.0.1 (proxy headers trusted, as in the Dockerfile), in a
    background thread with its own event loop; this process's own requests to it pass the
    fake upstreams by."""
    fakes.router.route(host="127.0.0.1").pass_through()
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        values = {**business_settings(Path(folder), businesses), **overrides}
        settings = console_settings(database_url, **values)
        app = build_app(settings, clock)
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
        loops: list[asyncio.AbstractEventLoop] = []

        async def serve() -> None:
            loops.append(asyncio.get_running_loop())
            await server.serve()

        thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        thread.start()
        try:
            wait_for(lambda: server.started or not thread.is_alive(), 30, "the console's server")
            assert server.started, "uvicorn did not start"
            yield Served(f"http://127.0.0.1:{port}", app, clock, fakes, loops[0])
        finally:
            server.should_exit = True
            thread.join(timeout=30)
