"""Gemini and Graph failing under the app: an apology, transient errors retried, permanent not."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from helpers import TEXT_ID, Harness, load_payload, make_settings, running_app
from respx_upstreams import FakeUpstreams, gemini_answer, gemini_error, graph_error

from domain.types import MessageState

FALLBACK = "Sorry, I can't answer that right now. Please try again in a little while."


# --- Failures upstream --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        [gemini_error(500, "INTERNAL")] * 3,
        [gemini_error(429, "RESOURCE_EXHAUSTED")] * 3,
        [gemini_error(400, "INVALID_ARGUMENT")],
        [gemini_error(403, "PERMISSION_DENIED")],
        [httpx.ReadTimeout("slow")] * 3,
        [httpx.ConnectError("refused")] * 3,
        [httpx.Response(200, json={"promptFeedback": {"blockReason": "SAFETY"}})],
        [httpx.Response(200, json={"candidates": [{"finishReason": "SAFETY"}]})],
        [
            httpx.Response(
                200,
                json={"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]},
            )
        ],
        [gemini_answer("")],
        [gemini_answer("---")],
        [httpx.Response(200, text="<html>proxy error</html>")],
    ],
    ids=[
        "500",
        "429",
        "400",
        "403",
        "timeout",
        "connect-error",
        "prompt-blocked",
        "safety-stop",
        "max-tokens-empty",
        "empty-text",
        "empty-after-formatting",
        "malformed",
    ],
)
async def test_gemini_failure_gets_the_user_an_apology(
    harness: Harness, failure: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    harness.fakes.gemini_queue.extend(failure)
    await harness.post(load_payload("text"))
    await harness.settle()
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [FALLBACK]
    assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.FAILED
    assert any("gemini gave no answer" in r.getMessage() for r in caplog.records)


async def test_gemini_retries_transient_errors_then_answers(harness: Harness) -> None:
    harness.fakes.gemini_queue.extend(
        [gemini_error(503, "UNAVAILABLE"), gemini_error(429, "RESOURCE_EXHAUSTED")]
    )
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.gemini_calls) == 3
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [
        "You said: Does it come in another color?"
    ]


async def test_custom_fallback_message_is_used(database_url: str, fakes: FakeUpstreams) -> None:
    fakes.gemini_queue.extend([gemini_error(500, "INTERNAL")] * 3)
    settings = make_settings(database_url, fallback_message="Desculpe, tente mais tarde.")
    async with running_app(settings, fakes) as harness:
        await harness.post(load_payload("text"))
        await harness.settle()
    assert [m["text"]["body"] for m in fakes.sent()] == ["Desculpe, tente mais tarde."]


async def test_graph_5xx_then_success_delivers_once(harness: Harness) -> None:
    harness.fakes.send_queue.extend([graph_error(500, 1, "OAuthException"), graph_error(503, 2)])
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 3
    assert len(harness.fakes.sent()) == 1
    assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.DONE


@pytest.mark.parametrize("code", [130429, 131056, 131000])
async def test_graph_transient_codes_are_retried(harness: Harness, code: int) -> None:
    harness.fakes.send_queue.append(graph_error(400, code))
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 2
    assert len(harness.fakes.sent()) == 1


@pytest.mark.parametrize(
    "status, code, state",
    [
        (400, 131047, MessageState.EXPIRED),
        (401, 190, MessageState.FAILED),
        (400, 100, MessageState.FAILED),
        (400, 131026, MessageState.FAILED),
    ],
)
async def test_graph_permanent_errors_are_not_retried(
    harness: Harness, caplog: pytest.LogCaptureFixture, status: int, code: int, state: str
) -> None:
    caplog.set_level(logging.WARNING)
    harness.fakes.send_queue.append(graph_error(status, code))
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 1
    assert await harness.services.store.inbox.state_of(TEXT_ID) == state
    assert any(f"code={code}" in r.getMessage() for r in caplog.records)


async def test_graph_connection_refused_is_retried_then_marked_failed(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.send_queue.extend([httpx.ConnectError("refused")] * 4)
    async with running_app(make_settings(database_url, graph_max_attempts=4), fakes) as harness:
        await harness.post(load_payload("text"))
        await harness.settle()
        assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.FAILED
    assert len(fakes.send_attempts()) == 4
    assert fakes.sent() == []


async def test_mark_read_failure_does_not_stop_the_answer(harness: Harness) -> None:
    harness.fakes.read_queue.extend([graph_error(400, 100)])
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.sent()) == 1
