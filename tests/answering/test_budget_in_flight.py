"""The daily budget under concurrency: many answers in flight at once, on one instance or two on
one PostgreSQL, reserve their worst case before Gemini is asked; the rest get the budget reply
in their language; holds settle to the real cost after an answer, after a failure, and TTS
and File Search indexing count in the day's spend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from helpers import PHONE_NUMBER_ID, Harness, load_payload, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer, gemini_error
from sqlalchemy import select

from answering.estimate import worst_case
from answering.inbound import Question
from config import Settings
from language.replies import Reply, reply_text
from storage.schema import budget_holds

PRICES: dict[str, Any] = {
    "price_input_per_million_usd": 2.0,
    "price_output_per_million_usd": 10.0,
    "price_thinking_per_million_usd": 10.0,
    "price_tts_per_million_usd": 20.0,
    "price_per_search_usd": 0.01,
}
QUESTION = "hello"
BUDGET_EN = reply_text(Reply.BUDGET, "en")
BUDGET_PT = reply_text(Reply.BUDGET, "pt-BR")
# Ten users writing at once: five from the US, five from Brazil.
USERS = [f"1650555{i:04d}" for i in range(5)] + [f"551198765{i:04d}" for i in range(5)]


def cap_of(settings: Settings) -> float:
    """One text answer's worst case under these settings."""
    business = settings.businesses.get(PHONE_NUMBER_ID)
    assert business is not None
    return worst_case(business, settings, Question(QUESTION, QUESTION), spoken=False).cost_usd


def room_for_three(database_url: str, **overrides: Any) -> Settings:
    """A budget with room for three answers' worst cases in flight, not four."""
    settings = make_settings(database_url, **PRICES, **overrides)
    return make_settings(
        database_url, **PRICES, **overrides, daily_budget_usd=2.5 * cap_of(settings)
    )


class Gate:
    """A fake Gemini that holds every request until released."""

    def __init__(self) -> None:
        self.held = 0
        self.open = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.held += 1
        await self.open.wait()
        return gemini_answer("Answered.", prompt_tokens=1000, output_tokens=100)  # $0.003


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for the service to get there (no assertion on how long it takes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the service never got there"
        await asyncio.sleep(0.01)


LATER = "16505559999"


async def holds_left(app: Harness) -> int:
    """Holds still in the table (one not settled would count only until its lease ran out)."""
    async with app.services.store.engine.connect() as conn:
        return len((await conn.execute(select(budget_holds))).all())


def replies(fakes: FakeUpstreams) -> dict[str, str]:
    return {m["to"]: m["text"]["body"] for m in fakes.sent()}


def refusals(fakes: FakeUpstreams) -> int:
    return sum(body in (BUDGET_EN, BUDGET_PT) for body in replies(fakes).values())


async def ten_at_once(instances: list[Harness], fakes: FakeUpstreams, gate: Gate) -> None:
    """Ten users write at once (spread over the instances); three answers reach Gemini and
    are held there while the seven others are refused; then Gemini answers."""
    fakes.gemini_queue.extend([gate] * len(USERS))
    posts: list[Awaitable[httpx.Response]] = [
        instances[i % len(instances)].post(
            text_payload(QUESTION, message_id=f"wamid.f{i}", wa_id=user)
        )
        for i, user in enumerate(USERS)
    ]
    assert all(r.status_code == 200 for r in await asyncio.gather(*posts))
    await until(lambda: gate.held == 3 and refusals(fakes) == 7)
    fakes.gemini_queue.clear()  # the gates no answer took
    gate.open.set()
    for instance in instances:
        await instance.settle_all()


def check_languages(fakes: FakeUpstreams) -> None:
    """Three users answered; every other one refused in their own language."""
    got = replies(fakes)
    got.pop(LATER, None)
    assert sorted(got.values()).count("Answered.") == 3
    for user, body in got.items():
        if body != "Answered.":
            assert body == (BUDGET_PT if user.startswith("55") else BUDGET_EN)


async def test_ten_answers_at_once_with_room_for_three_reach_gemini_three_times(
    database_url: str, fakes: FakeUpstreams
) -> None:
    gate = Gate()
    settings = room_for_three(database_url)
    async with running_app(settings, fakes) as app:
        await ten_at_once([app], fakes, gate)
        store = app.services.store
        held, spent = await holds_left(app), await store.usage.spent_today()
        # Settled to the real cost, the day has room again: the next message is answered.
        fakes.gemini_queue.append(gemini_answer("Later.", prompt_tokens=1000, output_tokens=100))
        await app.post(text_payload("again", message_id="wamid.f-later", wa_id=LATER))
        await app.settle_all()
    assert gate.held == 3 and len(fakes.gemini_calls) == 4
    check_languages(fakes)
    assert held == 0  # every hold settled
    assert spent == pytest.approx(3 * 0.003)
    assert replies(fakes).pop(LATER) == "Later."


async def test_two_instances_on_one_database_share_the_room(
    postgres_database: str, fakes: FakeUpstreams
) -> None:
    gate = Gate()
    settings = room_for_three(postgres_database)
    async with running_app(settings, fakes) as first, running_app(settings, fakes) as second:
        await ten_at_once([first, second], fakes, gate)
        spent = await first.services.store.usage.spent_today()
    assert gate.held == 3 and len(fakes.gemini_calls) == 3
    check_languages(fakes)
    assert spent == pytest.approx(3 * 0.003)


async def test_a_failed_answer_gives_its_room_back(database_url: str, fakes: FakeUpstreams) -> None:
    settings = make_settings(database_url, **PRICES)
    settings = make_settings(database_url, **PRICES, daily_budget_usd=0.5 * cap_of(settings))
    fakes.gemini_queue.extend([gemini_error(500, "INTERNAL")] * 3)  # every attempt fails
    fakes.gemini_queue.append(gemini_answer("Second.", prompt_tokens=1000, output_tokens=100))
    async with running_app(settings, fakes) as app:
        await app.post(text_payload(QUESTION, message_id="wamid.g1"))
        await app.settle_all()
        held, spent = await holds_left(app), await app.services.store.usage.spent_today()
        await app.post(text_payload(QUESTION, message_id="wamid.g2"))
        await app.settle_all()
    assert (held, spent) == (0, 0)  # nothing billed, nothing held
    assert [m["text"]["body"] for m in fakes.sent()][-1] == "Second."


async def test_a_blocked_answer_counts_what_gemini_billed(
    database_url: str, fakes: FakeUpstreams
) -> None:
    blocked = {
        "candidates": [{"finishReason": "SAFETY"}],
        "usageMetadata": {"promptTokenCount": 1000, "thoughtsTokenCount": 100},
    }
    fakes.gemini_queue.append(httpx.Response(200, json=blocked))
    async with running_app(room_for_three(database_url), fakes) as app:
        await app.post(text_payload(QUESTION, message_id="wamid.s1"))
        await app.settle_all()
        held, spent = await holds_left(app), await app.services.store.usage.spent_today()
    assert held == 0
    assert spent == pytest.approx(1000 * 2.0 / 1e6 + 100 * 10.0 / 1e6)  # $0.003


async def test_a_voice_answer_counts_its_speech_in_the_days_spend(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.add_media("1046531573838283", b"OggS fake voice note", "audio/ogg; codecs=opus")
    fakes.gemini_queue.append(
        gemini_answer("We open at six.", prompt_tokens=1000, output_tokens=100)
    )
    async with running_app(room_for_three(database_url), fakes) as app:
        payload = load_payload("voice")
        await app.post(payload)
        await app.settle_all()
        spent = await app.services.store.usage.spent_today()
        [day] = await app.services.store.usage.days(None, "2000-01-01")
    assert len(fakes.tts_calls) == 1 and len(fakes.voice_notes()) == 1
    # The answer ($0.003), then speech: 30 tokens read at $2/M and 200 of audio at $20/M.
    assert day.tts_tokens == 200
    assert spent == pytest.approx(0.003 + 30 * 2.0 / 1e6 + 200 * 20.0 / 1e6)


async def test_the_rounds_before_a_failure_count_in_the_days_spend(
    database_url: str, fakes: FakeUpstreams
) -> None:
    called = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"functionCall": {"name": "nope"}}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100},
    }
    fakes.gemini_queue.append(httpx.Response(200, json=called))  # a round: $0.003
    fakes.gemini_queue.extend([gemini_error(500, "INTERNAL")] * 3)  # the next one fails
    async with running_app(room_for_three(database_url), fakes) as app:
        await app.post(text_payload(QUESTION, message_id="wamid.r1"))
        await app.settle_all()
        held, spent = await holds_left(app), await app.services.store.usage.spent_today()
    assert len(fakes.gemini_calls) == 4
    assert held == 0
    assert spent == pytest.approx(0.003)
