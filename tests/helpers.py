"""What the tests share: settings, signed Meta payloads, respx fakes of the upstreams, an app."""

from __future__ import annotations

import asyncio
import base64
import copy
import email
import email.policy
import functools
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import respx
from argon2 import PasswordHasher
from sqlalchemy import delete
from sqlalchemy.engine import make_url

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

from fake_file_search import FakeFileSearch  # noqa: E402
from fake_upstreams import VERIFIED_NAME  # noqa: E402
from meta_openapi import invalid_parameter, problems, rejection  # noqa: E402

from config import Settings  # noqa: E402
from console.passwords import Passwords  # noqa: E402
from main import create_app  # noqa: E402
from service.lifespan import Services  # noqa: E402
from storage.schema import head_revision, metadata  # noqa: E402
from storage.store import Store  # noqa: E402
from webhook.signature import sign  # noqa: E402


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


def gemini_answer(text: str, prompt_tokens: int = 12, output_tokens: int = 7) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": prompt_tokens + output_tokens,
            },
            "modelVersion": "gemini-3.8-flash",
        },
    )


def sine_pcm(seconds: float, rate: int = 24000) -> bytes:
    """Signed 16-bit little-endian mono PCM of a 440 Hz tone, as Gemini's TTS answers."""
    samples = (
        int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))
    )
    return b"".join(struct.pack("<h", sample) for sample in samples)


def speech_answer(
    audio: bytes, mime_type: str = "audio/L16;codec=pcm;rate=24000"
) -> httpx.Response:
    """A text-to-speech answer: the audio inline, base64 as the API sends it."""
    return httpx.Response(
        200,
        json={
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "inlineData": {
                                    "mimeType": mime_type,
                                    "data": base64.b64encode(audio).decode(),
                                }
                            }
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 200},
        },
    )


def parse_multipart(request: httpx.Request) -> tuple[dict[str, str], dict[str, tuple[bytes, str]]]:
    """A multipart/form-data body: its plain fields, and its files as (bytes, content type)."""
    message = email.message_from_bytes(
        b"Content-Type: "
        + request.headers["content-type"].encode()
        + b"\r\n\r\n"
        + request.content,
        policy=email.policy.HTTP,
    )
    form: dict[str, str] = {}
    files: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_filename():
            files[name] = (payload, part.get_content_type())
        else:
            form[name] = payload.decode()
    return form, files


def gemini_error(status: int, name: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": status, "message": "test failure", "status": name}}
    )


def graph_error(status: int, code: int, kind: str = "OAuthException") -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {
                "message": "test failure",
                "type": kind,
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": "test"},
                "fbtrace_id": "AbCdEf",
            }
        },
    )


Reply = httpx.Response | Exception | Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass
class FakeUpstreams:
    """Graph and Gemini faked at the HTTP level; queued replies first, then a default."""

    router: respx.Router
    gemini_queue: list[Reply] = field(default_factory=list)
    send_queue: list[Reply] = field(default_factory=list)
    read_queue: list[Reply] = field(default_factory=list)
    gemini_calls: list[httpx.Request] = field(default_factory=list)
    graph_calls: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    media_info_queue: list[Reply] = field(default_factory=list)
    download_queue: list[Reply] = field(default_factory=list)
    media_requests: list[httpx.Request] = field(default_factory=list)
    # (the business number id in the path, the bearer token) of each Graph message call
    senders: list[tuple[str, str]] = field(default_factory=list)
    # Text-to-speech: its requests, and queued replies before the default (one second of PCM)
    tts_calls: list[httpx.Request] = field(default_factory=list)
    tts_queue: list[Reply] = field(default_factory=list)
    # Media uploaded to send (a voice note): (its bytes, the form's fields, the file's type)
    uploads: list[tuple[bytes, dict[str, str], str]] = field(default_factory=list)
    upload_queue: list[Reply] = field(default_factory=list)
    # The business number's names (GET /{version}/{number id}?fields=...): requests, replies
    number_requests: list[httpx.Request] = field(default_factory=list)
    number_queue: list[Reply] = field(default_factory=list)
    # Gemini File Search: stores, documents, uploads (everything under GEMINI_BASE but answers)
    file_search: FakeFileSearch = field(default_factory=lambda: FakeFileSearch(GEMINI_BASE))
    # Messages Meta's OpenAPI description refuses, each explained; the fixture fails on any
    rejected: list[str] = field(default_factory=list)

    def install(self) -> None:
        self.router.post(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<number_id>\d+)/messages$").mock(
            side_effect=self._graph
        )
        self.router.post(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<number_id>\d+)/media$").mock(
            side_effect=self._upload
        )
        self.router.get(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<number_id>\d+)\?fields=").mock(
            side_effect=self._number
        )
        # Any single path segment, as Meta answers any id (an error for one it does not know).
        self.router.get(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<media_id>[^/?]+)$").mock(
            side_effect=self._media_info
        )
        self.router.get(url__regex=rf"^{MEDIA_BASE}/").mock(side_effect=self._download)
        self.router.post(
            url__regex=rf"^{GEMINI_BASE}/v1[a-z0-9]*/models/[^/:]+:generateContent$"
        ).mock(side_effect=self._gemini)
        # File Search held, then answered (a pattern of its own: respx merges routes of one)
        self.router.route(url__regex=rf"^{GEMINI_BASE}/").mock(
            side_effect=self.file_search.wait_if_held
        )
        self.router.route(url__startswith=GEMINI_BASE).mock(side_effect=self.file_search.handle)

    async def _reply(self, queue: list[Reply], request: httpx.Request) -> httpx.Response | None:
        if not queue:
            return None
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return await reply(request)

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        self.media[media_id] = (data, mime_type)

    async def _media_info(self, request: httpx.Request, media_id: str) -> httpx.Response:
        """Meta's media metadata: a short-lived URL (a new one each time), type, hash, size."""
        self.media_requests.append(request)
        queued = await self._reply(self.media_info_queue, request)
        if queued is not None:
            return queued
        if media_id not in self.media:
            return graph_error(404, 100, "GraphMethodException")
        data, mime_type = self.media[media_id]
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "url": f"{MEDIA_BASE}/{media_id}?ext=1&hash=h{len(self.media_requests)}",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            },
        )

    async def _download(self, request: httpx.Request) -> httpx.Response:
        self.media_requests.append(request)
        queued = await self._reply(self.download_queue, request)
        if queued is not None:
            return queued
        media_id = request.url.path.rsplit("/", 1)[-1]
        data, mime_type = self.media[media_id]
        return httpx.Response(200, content=data, headers={"Content-Type": mime_type})

    async def _number(self, request: httpx.Request, number_id: str) -> httpx.Response:
        """The business number's fields asked for, as Meta answers them."""
        self.number_requests.append(request)
        queued = await self._reply(self.number_queue, request)
        if queued is not None:
            return queued
        fields = {"verified_name": VERIFIED_NAME, "display_phone_number": "15550783881"}
        wanted = request.url.params.get("fields", "").split(",")
        return httpx.Response(
            200, json={**{k: fields[k] for k in wanted if k in fields}, "id": number_id}
        )

    async def _upload(self, request: httpx.Request, number_id: str) -> httpx.Response:
        """Meta's media upload: a multipart form with messaging_product, type and file."""
        queued = await self._reply(self.upload_queue, request)
        if queued is not None:
            return queued
        form, files = parse_multipart(request)
        data, mime_type = files["file"]
        self.uploads.append((data, form, mime_type))
        return httpx.Response(200, json={"id": f"{len(self.uploads)}000111"})

    async def _gemini(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("generationConfig", {}).get("responseModalities") == ["AUDIO"]:
            self.tts_calls.append(request)
            queued = await self._reply(self.tts_queue, request)
            return queued or speech_answer(sine_pcm(1.0))
        self.gemini_calls.append(request)
        queued = await self._reply(self.gemini_queue, request)
        if queued is not None:
            return queued
        last_text = json.loads(request.content)["contents"][-1]["parts"][-1]["text"]
        return gemini_answer(f"You said: {last_text}")

    async def _graph(self, request: httpx.Request, number_id: str) -> httpx.Response:
        body = json.loads(request.content)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.senders.append((number_id, token))
        if found := problems(body):
            self.rejected.append(rejection(body, found))
            self.graph_calls.append((body, 400))
            return httpx.Response(400, json=invalid_parameter(found))
        queue = self.read_queue if body.get("status") == "read" else self.send_queue
        try:
            response = await self._reply(queue, request)
        except Exception:
            self.graph_calls.append((body, 0))
            raise
        if response is None:
            if body.get("status") == "read":
                response = httpx.Response(200, json={"success": True})
            else:
                response = httpx.Response(
                    200,
                    json={
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                        "messages": [{"id": f"wamid.out-{len(self.graph_calls)}"}],
                    },
                )
        self.graph_calls.append((body, response.status_code))
        return response

    def voice_notes(self) -> list[dict[str, Any]]:
        """Audio messages Meta accepted."""
        return [b for b, status in self.graph_calls if b.get("type") == "audio" and status == 200]

    def gemini_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.gemini_calls]

    def sent(self) -> list[dict[str, Any]]:
        """Text messages Meta accepted, in the order they were sent."""
        return [b for b, status in self.graph_calls if b.get("type") == "text" and status == 200]

    def send_attempts(self) -> list[dict[str, Any]]:
        return [b for b, _ in self.graph_calls if b.get("type") == "text"]

    def read_receipts(self) -> list[dict[str, Any]]:
        return [b for b, status in self.graph_calls if b.get("status") == "read" and status == 200]


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


@asynccontextmanager
async def fresh_postgres_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield str(make_url(server_url).set(database=name).render_as_string(hide_password=False))
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def need_postgres(postgres_url: str | None) -> str:
    if postgres_url is None:
        reason = (
            "PostgreSQL not found (no initdb/pg_ctl on PATH or under /usr/lib/postgresql): "
            "install it (apt-get install postgresql) or set TEST_DATABASE_URL"
        )
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    return postgres_url


async def migrate(database_url: str) -> None:
    """Bring a database's schema to the newest migration, as the app does at start-up."""
    store = await Store.open(database_url)
    await store.close()


# What TRUNCATE ... RESTART IDENTITY does, at a quarter of the server's work on the few rows a
# test leaves (the schema has no foreign keys, so the order does not matter).
EMPTY_POSTGRES = "; ".join(
    [
        *(str(delete(table)) for table in metadata.tables.values()),
        "SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'",
    ]
)


async def empty_database(url: str) -> None:
    """Remove every row of a PostgreSQL database, so each test starts clean; migrate it first
    unless it is at the newest migration already (a test may have taken it down)."""
    conn = await asyncpg.connect(url)
    try:
        try:
            current = await conn.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            current = None
        if current != head():
            await migrate(url)
        await conn.execute(EMPTY_POSTGRES)
    finally:
        await conn.close()


@functools.cache
def head() -> str | None:
    """The newest migration (read once: Alembic parses every migration file to tell)."""
    return head_revision()


def first_certificate(bundle: str) -> str:
    """The first certificate of a PEM bundle."""
    text = Path(bundle).read_text(encoding="ascii")
    end = "-----END CERTIFICATE-----\n"
    return text[text.index("-----BEGIN CERTIFICATE-----") : text.index(end) + len(end)]


def copy_database(template: Path, target: Path) -> str:
    """A SQLite database at `target`, a copy of `template` (the file alone: its write-ahead
    log was folded back in when its last connection closed)."""
    if template.with_name(f"{template.name}-wal").exists():
        raise AssertionError(f"{template} is still open")
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"
