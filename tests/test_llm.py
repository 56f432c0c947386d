"""Tests for llm.py: request building and the Gemini client over respx-faked HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
from helpers import GEMINI_BASE
from respx_upstreams import gemini_answer, gemini_error

from domain.types import Backoff, Role, Turn
from gemini.requests import build_request
from gemini.sdk import speed_up_sdk_field_lookups
from llm import Answer, Gemini, LLMError

MODEL = "gemini-3.8-flash"
KEY = "AQ.test-gemini-key-xyz"
URL = f"{GEMINI_BASE}/v1/models/{MODEL}:generateContent"


def roles_and_texts(contents: Any) -> list[tuple[str | None, str | None]]:
    out = []
    for content in contents:
        assert len(content["parts"]) == 1
        out.append((content["role"], content["parts"][0]["text"]))
    return out


# ---------------------------------------------------------------------------------------------
# build_request


def test_build_request_config() -> None:
    _, config = build_request("Be brief.", [], "hi", max_output_tokens=321)
    # Sampling is left to the model's defaults: only the output bound and the instructions.
    assert config == {"system_instruction": "Be brief.", "max_output_tokens": 321}


def test_build_request_empty_system_prompt_sends_none() -> None:
    _, config = build_request("", [], "hi", max_output_tokens=10)
    assert "system_instruction" not in config


def U(text: str) -> Turn:
    return Turn(Role.USER, text)


def M(text: str) -> Turn:
    return Turn(Role.MODEL, text)


@pytest.mark.parametrize(
    ("history", "message", "expected"),
    [
        pytest.param([], "hello", [("user", "hello")], id="empty-history"),
        pytest.param(
            [
                Turn(Role.USER, "a"),
                Turn(Role.MODEL, "b"),
                Turn(Role.USER, "c"),
                Turn(Role.MODEL, "d"),
            ],
            "e",
            [("user", "a"), ("model", "b"), ("user", "c"), ("model", "d"), ("user", "e")],
            id="alternating-in-order",
        ),
        pytest.param(
            [
                Turn(Role.USER, "a"),
                Turn(Role.USER, "b"),
                Turn(Role.MODEL, "c"),
                Turn(Role.MODEL, "d"),
            ],
            "e",
            [("user", "a\n\nb"), ("model", "c\n\nd"), ("user", "e")],
            id="same-role-merged",
        ),
        pytest.param(
            [Turn(Role.USER, "a"), Turn(Role.MODEL, "b")],
            "",
            [("user", "a"), ("model", "b")],
            id="empty-new-message-skipped",
        ),
        pytest.param(
            [Turn(Role.USER, "q")],
            "again",
            [("user", "q\n\nagain")],
            id="unanswered-user-turn-merged-with-new",
        ),
        pytest.param(
            [Turn(Role.MODEL, "hi, I am a bot"), Turn(Role.USER, "a"), Turn(Role.MODEL, "b")],
            "c",
            [("user", "a"), ("model", "b"), ("user", "c")],
            id="leading-model-dropped",
        ),
        pytest.param(
            [Turn(Role.MODEL, "x"), Turn(Role.MODEL, "y")],
            "c",
            [("user", "c")],
            id="all-leading-model-dropped",
        ),
        pytest.param(
            [Turn(Role.USER, "a"), Turn(Role.MODEL, ""), Turn(Role.USER, "b"), Turn(Role.USER, "")],
            "c",
            [("user", "a\n\nb\n\nc")],
            id="empty-turns-skipped",
        ),
        pytest.param(
            [Turn(Role.USER, ""), Turn(Role.MODEL, "m"), Turn(Role.USER, "u")],
            "c",
            [("user", "u\n\nc")],
            id="empty-user-then-model-is-leading",
        ),
    ],
)
def test_build_request_contents(
    history: list[Turn], message: str, expected: list[tuple[str, str]]
) -> None:
    contents, _ = build_request("sys", history, message, max_output_tokens=10)
    assert roles_and_texts(contents) == expected


def test_build_request_does_not_mutate_history() -> None:
    history = [Turn(Role.USER, "a"), Turn(Role.USER, "b")]
    build_request("sys", history, "c", max_output_tokens=10)
    assert history == [Turn(Role.USER, "a"), Turn(Role.USER, "b")]


# ---------------------------------------------------------------------------------------------
# Gemini.generate


@pytest.fixture
def router() -> Iterator[respx.Router]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = httpx.AsyncClient()
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def gemini() -> Iterator[Gemini]:
    """One client for the module: building one costs ~0.2 s (the SDK loads CA certificates).

    No connection is ever opened (respx answers), so sharing it across event loops is safe.
    """
    http = httpx.AsyncClient()
    client = Gemini(
        api_key=KEY,
        model=MODEL,
        http=http,
        base_url=GEMINI_BASE,
        timeout_seconds=5.0,
        backoff=Backoff(2, 0.001, 0.002),
    )
    yield client

    async def close() -> None:
        await client.aclose()
        await http.aclose()

    asyncio.run(close())


async def ask(gemini: Gemini) -> Answer:
    return await gemini.generate(
        "You are a shop assistant.",
        [Turn(Role.USER, "Hi"), Turn(Role.MODEL, "Hello! How can I help?")],
        "Do you deliver?",
        max_output_tokens=512,
    )


async def test_generate_request_and_answer(router: respx.Router, gemini: Gemini) -> None:
    route = router.post(URL).mock(return_value=gemini_answer("  Yes, we do.\n", 31, 5))
    answer = await ask(gemini)
    assert answer == Answer(text="Yes, we do.", prompt_tokens=31, output_tokens=5)
    assert route.call_count == 1
    request = route.calls.last.request
    assert str(request.url) == URL
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in str(request.url)
    assert "key=" not in str(request.url)
    body = json.loads(request.content)
    assert body["systemInstruction"]["parts"] == [{"text": "You are a shop assistant."}]
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello! How can I help?"}]},
        {"role": "user", "parts": [{"text": "Do you deliver?"}]},
    ]
    assert body["generationConfig"]["maxOutputTokens"] == 512
    assert "temperature" not in body["generationConfig"]


async def test_generate_without_usage_metadata(router: respx.Router, gemini: Gemini) -> None:
    router.post(URL).mock(
        return_value=httpx.Response(
            200, json={"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}}]}
        )
    )
    assert await ask(gemini) == Answer(text="ok", prompt_tokens=0, output_tokens=0)


async def test_503_then_success_is_retried(router: respx.Router, gemini: Gemini) -> None:
    route = router.post(URL).mock(
        side_effect=[gemini_error(503, "UNAVAILABLE"), gemini_answer("second time lucky")]
    )
    assert (await ask(gemini)).text == "second time lucky"
    assert route.call_count == 2


def body_of(candidate: dict[str, Any] | None, **extra: Any) -> httpx.Response:
    payload: dict[str, Any] = {"candidates": [candidate]} if candidate is not None else {}
    payload.update(extra)
    return httpx.Response(200, json=payload)


async def test_a_connection_closed_under_the_request_is_tried_once_more(
    router: respx.Router, gemini: Gemini
) -> None:
    """A kept-alive connection the server closes as the request goes out: not a failure."""
    route = router.post(URL).mock(
        side_effect=[httpx.RemoteProtocolError("Server disconnected"), gemini_answer("fine")]
    )
    answer = await gemini.generate("sys", [], "hi", max_output_tokens=10)
    assert answer.text == "fine"
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("reply", "calls", "reason_has"),
    [
        pytest.param(gemini_error(500, "INTERNAL"), 2, "500", id="500-persistent"),
        pytest.param(gemini_error(429, "RESOURCE_EXHAUSTED"), 2, "429", id="429-persistent"),
        pytest.param(gemini_error(400, "INVALID_ARGUMENT"), 1, "400", id="400-not-retried"),
        pytest.param(gemini_error(403, "PERMISSION_DENIED"), 1, "403", id="403-not-retried"),
        pytest.param(httpx.ReadTimeout("slow"), 2, "timed out", id="read-timeout"),
        pytest.param(httpx.ConnectError("refused"), 2, "ConnectError", id="connect-error"),
        pytest.param(httpx.ReadError("closed"), 2, "ReadError", id="closed-twice"),
        pytest.param(
            body_of(None, promptFeedback={"blockReason": "SAFETY"}),
            1,
            "SAFETY",
            id="prompt-blocked",
        ),
        pytest.param(body_of({"finishReason": "SAFETY"}), 1, "SAFETY", id="candidate-safety"),
        pytest.param(
            body_of({"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}),
            1,
            "MAX_TOKENS",
            id="max-tokens-no-parts",
        ),
        pytest.param(gemini_answer(""), 1, "no text", id="empty-text"),
        pytest.param(gemini_answer("  \n "), 1, "no text", id="whitespace-text"),
        pytest.param(body_of(None), 1, "empty response", id="no-candidates"),
        pytest.param(
            httpx.Response(200, text="<html>proxy error</html>"), 1, "malformed", id="non-json"
        ),
    ],
)
async def test_failures_become_llm_error(
    router: respx.Router,
    gemini: Gemini,
    reply: httpx.Response | Exception,
    calls: int,
    reason_has: str,
) -> None:
    route = router.post(URL).mock(side_effect=[reply] * 3)
    with pytest.raises(LLMError) as caught:
        await ask(gemini)
    assert route.call_count == calls
    assert reason_has in caught.value.reason
    assert caught.value.reason == str(caught.value)
    assert KEY not in caught.value.reason


async def test_aclose_leaves_shared_client_open(http: httpx.AsyncClient) -> None:
    gemini = Gemini(api_key=KEY, model=MODEL, http=http, base_url=GEMINI_BASE)
    await gemini.aclose()
    assert not http.is_closed


async def test_model_name_goes_into_path(router: respx.Router, http: httpx.AsyncClient) -> None:
    route = router.post(f"{GEMINI_BASE}/v1/models/gemini-other:generateContent").mock(
        return_value=gemini_answer("hi")
    )
    gemini = Gemini(api_key=KEY, model="gemini-other", http=http, base_url=GEMINI_BASE)
    try:
        assert (await gemini.generate("s", [], "x", max_output_tokens=5)).text == "hi"
    finally:
        await gemini.aclose()
    assert route.call_count == 1


async def test_the_whole_request_body(router: respx.Router, gemini: Gemini) -> None:
    """Byte for byte what goes to Gemini, attachments included (guards the SDK speed-up)."""

    @dataclass(frozen=True)
    class Photo:
        data: bytes
        mime_type: str

    route = router.post(URL).mock(return_value=gemini_answer("A cat."))
    await gemini.generate(
        "Be brief.",
        [Turn(Role.USER, "Hi"), Turn(Role.MODEL, "Hello!")],
        "What is this?",
        max_output_tokens=64,
        attachments=[Photo(b"\x89PNG", "image/png")],
    )
    assert json.loads(route.calls.last.request.content) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {
                "role": "user",
                "parts": [
                    # The SDK's own spelling; the API reads protobuf JSON, which accepts both.
                    {"inlineData": {"data": "iVBORw==", "mime_type": "image/png"}},
                    {"text": "What is this?"},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}], "role": "user"},
        "generationConfig": {"maxOutputTokens": 64},
    }


def test_sdk_models_answer_membership_as_pydantic_does(gemini: Gemini) -> None:
    """`speed_up_sdk_field_lookups` (applied by `Gemini`) answers strings at once, the same."""
    from google.genai import types

    config = types.GenerateContentConfig(max_output_tokens=5)
    assert "max_output_tokens" not in config  # type: ignore[operator]  # pydantic: pairs
    assert ("max_output_tokens", 5) in config
    assert ("max_output_tokens", 6) not in config
    speed_up_sdk_field_lookups()  # a second call changes nothing
    assert "max_output_tokens" not in config  # type: ignore[operator]
