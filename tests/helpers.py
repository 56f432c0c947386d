"""What the tests share: settings, signed Meta payloads, an app with its upstreams faked
(`respx_upstreams.FakeUpstreams`); databases are in `db_support.py`."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from argon2 import PasswordHasher

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = Path(__file__).resolve().parent / "payloads"
sys.path.insert(0, str(ROOT))

GRAPH_BASE = "https://graph.test"
GEMINI_BASE = "https://gemini.test"
PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "test-app-secret-5f1c"
VERIFY_TOKEN = "test-verify-token-93ab"
WHATSAPP_TOKEN = "test-whatsapp-token-77de"
GEMINI_API_KEY = "test-gemini-key-41c0"
MESSAGES_URL = f"{GRAPH_BASE}/v25.0/{PHONE_NUMBER_ID}/messages"
MEDIA_BASE = "https://lookaside.test/whatsapp_business/attachments"
TEXT_ID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="  # payloads/text.json's


from config import Settings  # noqa: E402
from console.passwords import Passwords  # noqa: E402
from main import create_app  # noqa: E402
from service.lifespan import Services  # noqa: E402
from webhook.signature import sign  # noqa: E402

if TYPE_CHECKING:
    from respx_upstreams import FakeUpstreams


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test app: fake upstreams, fast retries, no `.env` read."""
    values: dict[str, Any] = {
        "whatsapp_token": WHATSAPP_TOKEN,
        "verify_token": VERIFY_TOKEN,
        "app_secret": APP_SECRET,
        "phone_number_id": PHONE_NUMBER_ID,
        "gemini_api_key": GEMINI_API_KEY,
        "graph_api_base_url": GRAPH_BASE,
        "gemini_base_url": GEMINI_BASE,
        "database_url": database_url,
        "system_prompt": "You are the test shop's assistant.",
        "retry_base_delay_seconds": 0.001,
        "retry_max_delay_seconds": 0.005,
        "poll_interval_seconds": 0.05,
        "shutdown_grace_seconds": 5,
        "part_interval_seconds": 0,
        "gemini_max_attempts": 3,
        "rate_limit_per_minute": 1000,
        "graph_transport": "httpx",  # respx fakes Graph; the process tests the other
        "gemini_transport": "httpx",  # respx fakes Gemini; tests/test_llm_aiohttp.py the other
        # In-process answering, so that respx sees every upstream call; the worker processes
        # are covered by the tests that start a real `uvicorn main:app`.
        "worker_processes": 0,
        # Each message answered alone, at once; tests/answering/test_bursts.py sets its own.
        "message_debounce_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def service_env(upstream_url: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a real `uvicorn main:app` process against a local fake upstream.

    Built from scratch, not inherited, so no developer setting or `.env` value leaks in.
    """
    return {
        "PATH": os.environ.get("PATH", ""),
        "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET,
        "PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "GEMINI_API_KEY": GEMINI_API_KEY,
        "GRAPH_API_BASE_URL": upstream_url,
        "GEMINI_BASE_URL": upstream_url,
        "DATABASE_URL": database_url,
        "MESSAGE_DEBOUNCE_SECONDS": "0",
        **extra,
    }


def conversation(user: str, phone_number_id: str = PHONE_NUMBER_ID) -> str:
    """The key the store keeps a conversation under: the business's number id and the user."""
    return f"{phone_number_id}:{user}"


def load_payload(name: str) -> dict[str, Any]:
    """A payload file, its timestamps moved to just now (their order kept), as Meta sends them."""
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    events = [
        event
        for entry in data.get("entry", [])
        for change in entry.get("changes", [])
        for key in ("messages", "statuses")
        for event in change.get("value", {}).get(key, [])
    ]
    stamps = [int(e["timestamp"]) for e in events if "timestamp" in e]
    if stamps:
        shift = int(time.time()) - 5 - max(stamps)
        for event in events:
            if "timestamp" in event:
                event["timestamp"] = str(int(event["timestamp"]) + shift)
    return data


def text_payload(body: str, *, message_id: str, wa_id: str = "16505551234", ts: int = 0) -> Any:
    """The documented inbound text payload with another id, sender and text."""
    payload = copy.deepcopy(load_payload("text"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    message = value["messages"][0]
    message.update({"id": message_id, "from": wa_id, "text": {"body": body}})
    if ts:
        message["timestamp"] = str(ts)
    return payload


@dataclass
class Harness:
    """A started app, an ASGI client for it, and the fakes behind it."""

    settings: Settings
    client: httpx.AsyncClient
    services: Services
    fakes: FakeUpstreams

    async def post(
        self, payload: Any, *, secret: str = APP_SECRET, signature: str | None = None
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature != "":
            headers["X-Hub-Signature-256"] = signature or sign(body, secret)
        return await self.client.post("/webhook", content=body, headers=headers)

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until this instance has answered everything it can answer now."""
        await asyncio.wait_for(self.services.inline_dispatcher.wait_idle(), timeout)

    async def settle_all(self, timeout: float = 30.0) -> None:
        """Wait until no message is left unanswered, by any instance (leases may expire first)."""
        deadline = time.monotonic() + timeout
        while await self.services.store.inbox.count_unfinished():
            if time.monotonic() > deadline:
                raise AssertionError("messages were left unanswered")
            await self.settle(timeout)
            await asyncio.sleep(self.settings.poll_interval_seconds)


async def count_inbox(harness: Harness) -> int:
    """Rows in the inbox, whatever their state."""
    from sqlalchemy import func, select

    from storage.schema import inbox

    async with harness.services.store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(inbox)) or 0)


def cheap_passwords() -> Passwords:
    """Argon2id at its smallest cost: the default's 64 MiB and three passes take about 0.2 s of
    CPU per hash, and an app with the console hashes the admin's password as it starts."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@asynccontextmanager
async def running_app(settings: Settings, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    app = create_app(settings)
    if settings.console_enabled:
        app.state.console.passwords = cheap_passwords()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(settings, client, app.state.services, fakes)


def first_certificate(bundle: str) -> str:
    """The first certificate of a PEM bundle."""
    text = Path(bundle).read_text(encoding="ascii")
    end = "-----END CERTIFICATE-----\n"
    return text[text.index("-----BEGIN CERTIFICATE-----") : text.index(end) + len(end)]
