"""Order and concurrency over ASGI: each user in order, users in parallel, a bound, shutdown."""

from __future__ import annotations

import asyncio

import httpx
from helpers import Harness, load_payload, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer

# --- Ordering and concurrency -----------------------------------------------------------------


async def test_one_users_messages_are_answered_in_order(harness: Harness) -> None:
    async def slow_first(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return gemini_answer("answer one")

    harness.fakes.gemini_queue.extend(
        [slow_first, gemini_answer("answer two"), gemini_answer("answer three")]
    )
    payload = load_payload("text")
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    first = messages[0]
    messages[:] = [
        {**first, "id": f"wamid.o{i}", "timestamp": str(1749416383 + i), "text": {"body": f"q{i}"}}
        for i in range(3)
    ]
    await harness.post(payload)
    await harness.settle()
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [
        "answer one",
        "answer two",
        "answer three",
    ]
    asked = [b["contents"][-1]["parts"][0]["text"] for b in harness.fakes.gemini_bodies()]
    assert asked == ["q0", "q1", "q2"]


async def test_messages_are_ordered_by_meta_timestamp_within_a_body(harness: Harness) -> None:
    payload = load_payload("text")
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    first = messages[0]
    messages[:] = [
        {**first, "id": "wamid.late", "timestamp": "1749416390", "text": {"body": "second"}},
        {**first, "id": "wamid.early", "timestamp": "1749416380", "text": {"body": "first"}},
    ]
    await harness.post(payload)
    await harness.settle()
    asked = [b["contents"][-1]["parts"][0]["text"] for b in harness.fakes.gemini_bodies()]
    assert asked == ["first", "second"]


async def test_different_users_are_answered_in_parallel(harness: Harness) -> None:
    both_waiting = asyncio.Event()
    waiting = 0

    async def rendezvous(request: httpx.Request) -> httpx.Response:
        nonlocal waiting
        waiting += 1
        if waiting == 2:
            both_waiting.set()
        await asyncio.wait_for(both_waiting.wait(), timeout=5)
        return gemini_answer("together")

    harness.fakes.gemini_queue.extend([rendezvous, rendezvous])
    await harness.post(text_payload("hi", message_id="wamid.p1", wa_id="111"))
    await harness.post(text_payload("hi", message_id="wamid.p2", wa_id="222"))
    await harness.settle()
    assert sorted(m["to"] for m in harness.fakes.sent()) == ["111", "222"]


async def test_concurrency_is_bounded_by_max_concurrency(
    database_url: str, fakes: FakeUpstreams
) -> None:
    running = peak = 0

    async def counting(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return gemini_answer("ok")

    fakes.gemini_queue.extend([counting] * 12)
    async with running_app(make_settings(database_url, max_concurrency=3), fakes) as harness:
        for i in range(12):
            await harness.post(text_payload("hi", message_id=f"wamid.m{i}", wa_id=str(900 + i)))
        await harness.settle()
    assert len(fakes.sent()) == 12
    assert peak <= 3


async def test_shutdown_lets_an_in_flight_answer_finish(
    database_url: str, fakes: FakeUpstreams
) -> None:
    started = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(0.3)
        return gemini_answer("worth the wait")

    fakes.gemini_queue.append(slow)
    async with running_app(make_settings(database_url), fakes) as harness:
        await harness.post(load_payload("text"))
        await asyncio.wait_for(started.wait(), timeout=5)
    assert [m["text"]["body"] for m in fakes.sent()] == ["worth the wait"]
