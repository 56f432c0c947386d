"""Abuse and cost limits: rate limits per minute and day, long input cut, output bounded, pacing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import Harness, make_settings, running_app, text_payload
from media_support import bodies
from respx_upstreams import FakeUpstreams, gemini_answer

from language.replies import Reply, reply_text
from storage import recorder as recorder_module

# The English fixed replies: the users of these tests have US numbers.
RATE_LIMIT_NOTICE = reply_text(Reply.RATE_LIMITED, "en")


# --- Abuse and cost limits ----------------------------------------------------------------


class StoreClock:
    """Stands in for the `time` module of store.py: the clock messages are recorded by.

    Frozen, and moved on by the test: rate-limit windows are counted over the times the
    store records messages at, so moving it is the user writing again a minute or a day
    later. Everything else (the webhook, the worker, the upstream fakes) runs as usual.
    """

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def store_clock(monkeypatch: pytest.MonkeyPatch) -> StoreClock:
    clock = StoreClock()
    monkeypatch.setattr(recorder_module, "time", clock)
    return clock


async def say(harness: Harness, text: str) -> None:
    """The user sends `text`; return once the service has done all it will with it."""
    await harness.post(text_payload(text, message_id=f"wamid.say-{text}"))
    await harness.settle()


async def test_rate_limit_notice_once_then_silence_until_the_minute_slides(
    database_url: str, fakes: FakeUpstreams, store_clock: StoreClock
) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=2)
    async with running_app(settings, fakes) as harness:
        for n in range(4):
            await say(harness, f"q{n}")
        store_clock.now += 59  # still the same minute
        await say(harness, "q4")
        assert bodies(fakes) == ["You said: q0", "You said: q1", RATE_LIMIT_NOTICE]
        assert len(fakes.gemini_calls) == 2

        store_clock.now += 61  # over a minute after the last message: the window has slid
        for n in range(5, 9):
            await say(harness, f"q{n}")
    assert bodies(fakes) == [
        "You said: q0",
        "You said: q1",
        RATE_LIMIT_NOTICE,
        "You said: q5",
        "You said: q6",
        RATE_LIMIT_NOTICE,  # a new window, a new notice; then silence again
    ]
    assert len(fakes.gemini_calls) == 4


async def test_rate_limit_holds_across_two_instances(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=2)
    async with (
        running_app(settings, fakes) as first,
        running_app(settings, fakes) as second,
    ):
        for n in range(4):
            app = (first, second)[n % 2]
            await app.post(text_payload(f"q{n}", message_id=f"wamid.two{n}"))
            await app.settle_all()
        await first.settle()
        await second.settle()
    assert len(fakes.gemini_calls) == 2
    assert bodies(fakes).count(RATE_LIMIT_NOTICE) == 1
    assert len(fakes.sent()) == 3


async def test_the_daily_limit_slides_after_24_hours_with_a_new_notice(
    database_url: str, fakes: FakeUpstreams, store_clock: StoreClock
) -> None:
    settings = make_settings(database_url, rate_limit_per_day=2, rate_limit_per_minute=0)
    first = store_clock.now
    async with running_app(settings, fakes) as harness:
        for n in range(3):
            await say(harness, f"d{n}")
        store_clock.now = first + 23 * 3600 + 59 * 60  # 23 h 59 min later: the same day
        await say(harness, "d3")
        assert bodies(fakes) == ["You said: d0", "You said: d1", RATE_LIMIT_NOTICE]

        store_clock.now = first + 24 * 3600 + 60  # 24 h 1 min later: d0 to d2 have left
        for n in range(4, 7):
            await say(harness, f"d{n}")
    assert bodies(fakes) == [
        "You said: d0",
        "You said: d1",
        RATE_LIMIT_NOTICE,
        "You said: d4",  # d3 and d4 are the day's two
        RATE_LIMIT_NOTICE,
    ]
    assert len(fakes.gemini_calls) == 3


async def test_privacy_commands_are_answered_even_over_the_limit(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=1)
    async with running_app(settings, fakes) as harness:
        for text in ("hello", "again", "and again", "/reset", "/forget"):
            await say(harness, text)
    assert bodies(fakes) == [
        "You said: hello",
        RATE_LIMIT_NOTICE,
        reply_text(Reply.RESET, "en"),  # past the notice, where anything else gets silence
        reply_text(Reply.FORGET, "en"),
    ]
    assert len(fakes.gemini_calls) == 1


async def test_long_text_is_cut_with_a_note_to_gemini(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url, max_input_chars=50)
    async with running_app(settings, fakes) as harness:
        await harness.post(text_payload("x" * 500, message_id="wamid.long"))
        await harness.settle()
    asked = fakes.gemini_bodies()[0]["contents"][-1]["parts"][-1]["text"]
    assert asked.startswith("x" * 50 + "\n\n[Note:")
    assert "500 characters" in asked
    assert "x" * 51 not in asked


async def test_max_output_tokens_bounds_each_answer(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with running_app(make_settings(database_url, max_output_tokens=321), fakes) as harness:
        await harness.post(text_payload("hi", message_id="wamid.tok"))
        await harness.settle()
    assert fakes.gemini_bodies()[0]["generationConfig"]["maxOutputTokens"] == 321


async def test_reply_parts_are_sent_in_order_with_pacing(
    database_url: str, fakes: FakeUpstreams, monkeypatch: Any
) -> None:
    from answering import sending

    pauses: list[float] = []

    async def record_pause(seconds: float) -> None:
        pauses.append(seconds)

    answer = "\n\n".join(f"Part {n}. " + "word " * 700 for n in range(3))
    fakes.gemini_queue.append(gemini_answer(answer))
    settings = make_settings(database_url, part_interval_seconds=1.5)
    async with running_app(settings, fakes) as harness:
        monkeypatch.setattr(sending, "pause_between_parts", record_pause)
        await harness.post(text_payload("long please", message_id="wamid.parts"))
        await harness.settle()
        monkeypatch.undo()
    sent = bodies(fakes)
    assert [s.split(".")[0] for s in sent] == ["Part 0", "Part 1", "Part 2"]
    assert pauses.count(1.5) == len(sent) - 1
