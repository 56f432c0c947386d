"""The Gemini client over google-genai's aiohttp transport (GEMINI_TRANSPORT's default), against
a local HTTP server: respx sees only httpx, so here the SDK's own aiohttp path is exercised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fake_upstreams import free_port
from helpers import make_settings

from domain.types import Backoff, Role, Turn
from llm import Gemini, LLMError, close_gemini_http, gemini_aiohttp_session
from ops.sessions import environment_proxy
from service.answering import gemini_client_for

MODEL = "gemini-3.8-flash"
KEY = "AQ.test-gemini-key-xyz"
FAST = Backoff(attempts=3, first_delay=0.001, max_delay=0.005)

Step = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(text: str) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 7},
            }
        )

    return step


def error(status: int, name: str) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        body = {"error": {"code": status, "message": "test failure", "status": name}}
        return web.json_response(body, status=status)

    return step


def slow(seconds: float) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await answer("too late")(request)

    return step


def hang_up() -> Step:
    """Close the connection without an answer, as a server dropping a kept-alive one does."""

    async def step(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    return step


@dataclass
class FakeGemini:
    url: str
    steps: list[Step] = field(default_factory=list)
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    state = FakeGemini(url="")

    async def generate(request: web.Request) -> web.StreamResponse:
        state.seen.append((request.path, dict(request.headers), await request.json()))
        return await state.steps.pop(0)(request)

    app.router.add_post("/v1/models/{action}", generate)
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    opened = gemini_aiohttp_session(30.0, 8)
    yield opened
    await close_gemini_http(opened)


def gemini(
    http: aiohttp.ClientSession, url: str, *, timeout: float = 30.0, backoff: Backoff = FAST
) -> Gemini:
    return Gemini(
        api_key=KEY,
        model=MODEL,
        http=http,
        base_url=url,
        timeout_seconds=timeout,
        backoff=backoff,
    )


async def test_an_answer_over_aiohttp_is_the_same_request_and_reading(
    fake: FakeGemini, session: aiohttp.ClientSession
) -> None:
    fake.steps.append(answer("Olá! Abrimos às 8h."))
    history = [Turn(Role.USER, "Oi"), Turn(Role.MODEL, "Olá!")]
    got = await gemini(session, fake.url).generate(
        "Be brief.", history, "Que horas abrem?", max_output_tokens=200
    )
    assert (got.text, got.prompt_tokens, got.output_tokens) == ("Olá! Abrimos às 8h.", 12, 7)
    [(path, headers, body)] = fake.seen
    assert path == f"/v1/models/{MODEL}:generateContent"
    assert headers["x-goog-api-key"] == KEY
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        ("user", "Oi"),
        ("model", "Olá!"),
        ("user", "Que horas abrem?"),
    ]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["generationConfig"] == {"maxOutputTokens": 200}


async def test_a_4xx_is_an_llm_error_at_once(
    fake: FakeGemini, session: aiohttp.ClientSession
) -> None:
    fake.steps.append(error(400, "INVALID_ARGUMENT"))
    with pytest.raises(LLMError, match="Gemini API error 400 INVALID_ARGUMENT"):
        await gemini(session, fake.url).generate("", [], "hi", max_output_tokens=10)
    assert len(fake.seen) == 1


async def test_a_5xx_is_retried_with_the_sdks_backoff(
    fake: FakeGemini, session: aiohttp.ClientSession
) -> None:
    fake.steps += [error(503, "UNAVAILABLE"), error(429, "RESOURCE_EXHAUSTED"), answer("ok")]
    got = await gemini(session, fake.url).generate("", [], "hi", max_output_tokens=10)
    assert got.text == "ok"
    assert len(fake.seen) == 3


async def test_5xx_until_the_attempts_run_out_is_an_llm_error(
    fake: FakeGemini, session: aiohttp.ClientSession
) -> None:
    fake.steps += [error(500, "INTERNAL")] * 3
    with pytest.raises(LLMError, match="Gemini API error 500"):
        await gemini(session, fake.url).generate("", [], "hi", max_output_tokens=10)
    assert len(fake.seen) == 3


async def test_a_slow_gemini_times_out_as_an_llm_error(
    fake: FakeGemini, session: aiohttp.ClientSession
) -> None:
    fake.steps.append(slow(5.0))
    client = gemini(session, fake.url, timeout=0.2, backoff=Backoff(attempts=1))
    with pytest.raises(LLMError, match="Gemini timed out"):
        await client.generate("", [], "hi", max_output_tokens=10)


async def test_nobody_listening_is_an_llm_error(session: aiohttp.ClientSession) -> None:
    client = gemini(session, f"http://127.0.0.1:{free_port()}", backoff=Backoff(attempts=1))
    with pytest.raises(LLMError, match="Gemini unreachable: ClientConnectorError"):
        await client.generate("", [], "hi", max_output_tokens=10)


async def test_a_connection_dropped_under_a_request_is_tried_again(
    fake: FakeGemini, session: aiohttp.ClientSession
) -> None:
    fake.steps += [hang_up(), answer("second time lucky")]
    got = await gemini(session, fake.url).generate("", [], "hi", max_output_tokens=10)
    assert got.text == "second time lucky"
    assert len(fake.seen) == 2


async def test_a_dropped_connection_is_tried_once_more_even_without_sdk_retries(
    fake: FakeGemini, session: aiohttp.ClientSession
) -> None:
    fake.steps += [hang_up(), answer("again")]
    client = gemini(session, fake.url, backoff=Backoff(attempts=1))
    got = await client.generate("", [], "hi", max_output_tokens=10)
    assert got.text == "again"
    assert len(fake.seen) == 2


async def test_gemini_transport_picks_the_library(database_url: str) -> None:
    default = gemini_client_for(make_settings(database_url, gemini_transport="aiohttp"))
    chosen = gemini_client_for(make_settings(database_url, gemini_transport="httpx"))
    try:
        assert isinstance(default, aiohttp.ClientSession)
        assert not isinstance(chosen, aiohttp.ClientSession)
    finally:
        await close_gemini_http(default)
        await close_gemini_http(chosen)


def test_the_default_transport_is_aiohttp() -> None:
    from config import Settings

    assert Settings.model_fields["gemini_transport"].default == "aiohttp"


def test_the_environments_proxy_is_read_once_for_the_gemini_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert environment_proxy("https://generativelanguage.googleapis.com") == (
        "http://proxy.test:3128"
    )
    assert environment_proxy("http://127.0.0.1:8080") is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert environment_proxy("https://generativelanguage.googleapis.com") is None


async def test_the_session_sends_through_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch, fake: FakeGemini
) -> None:
    """The fake plays the proxy: a proxied request names the whole URL in its request line."""
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.setenv("NO_PROXY", "")
    proxied = gemini_aiohttp_session(30.0, 4, "http://gemini.test")
    fake.steps.append(answer("through the proxy"))
    try:
        got = await gemini(proxied, "http://gemini.test").generate(
            "", [], "hi", max_output_tokens=10
        )
    finally:
        await close_gemini_http(proxied)
    assert got.text == "through the proxy"
    assert len(fake.seen) == 1
