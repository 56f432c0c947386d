"""The Graph API client over its default transport (aiohttp, through httpx-aiohttp), against a
local HTTP server: respx sees only httpx's own transport, so here the aiohttp path is exercised
(the process tests run it too, end to end)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fake_upstreams import free_port
from pydantic import SecretStr

from domain.types import Backoff
from ops.pools import ShardedTransport
from whatsapp import GraphAPIError, GraphClient, graph_http_client

PNID = "106540352242922"
TOKEN = "EAAG-test-token"
FAST = Backoff(attempts=3, first_delay=0.001, max_delay=0.005)

Step = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sent(wamid: str) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        return web.json_response({"messaging_product": "whatsapp", "messages": [{"id": wamid}]})

    return step


def meta_error(status: int, code: int) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        body = {"error": {"message": "test failure", "type": "OAuthException", "code": code}}
        return web.json_response(body, status=status)

    return step


def slow(seconds: float) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await sent("wamid.late")(request)

    return step


class FakeGraph:
    """A local Graph API: each request takes the next step (the last one repeats)."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        record: dict[str, Any] = {
            "path": request.path,
            "authorization": request.headers.get("Authorization"),
            "content_type": request.content_type,
        }
        if request.content_type == "multipart/form-data":
            form = await request.post()
            upload = form["file"]
            assert isinstance(upload, web.FileField)
            record["form"] = {"type": form["type"], "file": upload.file.read()}
        else:
            record["json"] = await request.json()
        self.requests.append(record)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return await step(request)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeGraph, str]]:
    graph = FakeGraph()
    app = web.Application()
    app.router.add_post("/{tail:.*}", graph.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield graph, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def client_for(http: httpx.AsyncClient) -> GraphClient:
    return GraphClient(
        http, version="v25.0", phone_number_id=PNID, token=SecretStr(TOKEN), backoff=FAST
    )


async def test_a_text_goes_out_over_aiohttp_with_its_token(fake: tuple[FakeGraph, str]) -> None:
    server, url = fake
    server.steps = [sent("wamid.one")]
    http = graph_http_client(url, 5.0)
    try:
        wamid = await client_for(http).send_text("16505551234", "Olá!")
    finally:
        await http.aclose()
    assert wamid == "wamid.one"
    [request] = server.requests
    assert request["path"] == f"/v25.0/{PNID}/messages"
    assert request["authorization"] == f"Bearer {TOKEN}"
    assert request["json"]["text"]["body"] == "Olá!"


async def test_a_server_error_is_tried_again_and_a_client_error_is_not(
    fake: tuple[FakeGraph, str],
) -> None:
    server, url = fake
    http = graph_http_client(url, 5.0)
    try:
        server.steps = [meta_error(500, 2), sent("wamid.second")]
        assert await client_for(http).send_text("16505551234", "a") == "wamid.second"
        server.requests.clear()
        server.steps = [meta_error(400, 100)]
        with pytest.raises(GraphAPIError) as refused:
            await client_for(http).send_text("16505551234", "b")
    finally:
        await http.aclose()
    assert (refused.value.status, refused.value.code, refused.value.transient) == (400, 100, False)
    assert len(server.requests) == 1


async def test_an_unreachable_meta_is_a_transient_error_after_every_attempt() -> None:
    http = graph_http_client(f"http://127.0.0.1:{free_port()}", 2.0)
    try:
        with pytest.raises(GraphAPIError) as failed:
            await client_for(http).mark_read("wamid.in")
    finally:
        await http.aclose()
    assert failed.value.transient
    assert failed.value.status is None


async def test_a_slow_answer_is_abandoned_at_the_timeout(fake: tuple[FakeGraph, str]) -> None:
    server, url = fake
    server.steps = [slow(2.0)]
    http = graph_http_client(url, 0.2)
    try:
        with pytest.raises(GraphAPIError) as failed:
            await client_for(http).send_text("16505551234", "a")
    finally:
        await http.aclose()
    assert failed.value.transient
    assert len(server.requests) == FAST.attempts


async def test_an_upload_arrives_as_multipart_with_its_bytes(fake: tuple[FakeGraph, str]) -> None:
    server, url = fake

    async def media_id(request: web.Request) -> web.StreamResponse:
        return web.json_response({"id": "media-1"})

    server.steps = [media_id]
    http = graph_http_client(url, 5.0)
    try:
        found = await client_for(http).upload_media(b"OggS\x00voice", "audio/ogg", "voice.ogg")
    finally:
        await http.aclose()
    assert found == "media-1"
    [request] = server.requests
    assert request["path"] == f"/v25.0/{PNID}/media"
    assert request["form"] == {"type": "audio/ogg", "file": b"OggS\x00voice"}


async def test_httpx_own_transport_is_one_setting_away() -> None:
    http = graph_http_client("http://127.0.0.1:1", 1.0, library="httpx")
    try:
        assert isinstance(http._transport, ShardedTransport)
    finally:
        await http.aclose()
