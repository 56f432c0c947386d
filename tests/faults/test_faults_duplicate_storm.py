"""A duplicate storm: 100 messages sent 10 times each, shuffled, to two instances on one database.

It ends in a precise end state: how many times each upstream was called, what the user was sent
(exactly once), and the state of each inbox row. Part of the fault suite (`make faults`), not of
`make test`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter

import httpx
import pytest
from fault_support import states
from helpers import make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer
from running import settle_everywhere

from domain.types import MessageState

pytestmark = pytest.mark.fault


# --- 2. Duplicate storm: 100 messages x 10 deliveries, shuffled, two instances, one database ---

STORM_MESSAGES = 100
STORM_COPIES = 10
STORM_SENDERS = 50


async def test_duplicate_storm_across_two_instances_answers_each_message_once(
    postgres_database: str, fakes: FakeUpstreams
) -> None:
    rng = random.Random(0x5707)
    jitter = random.Random(0x1177)

    async def slowish(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(jitter.uniform(0, 0.03))  # keep claims in flight during the storm
        question = json.loads(request.content)["contents"][-1]["parts"][-1]["text"]
        return gemini_answer(f"re: {question}")

    fakes.gemini_queue.extend([slowish] * STORM_MESSAGES)
    base = int(time.time()) - 120
    expected: dict[str, tuple[str, str]] = {}  # message id -> (sender, reply)
    bodies: list[tuple[str, bytes]] = []
    for n in range(STORM_MESSAGES):
        message_id = f"wamid.storm-{n:03d}"
        sender = f"4915{n % STORM_SENDERS:07d}"
        question = f"storm question {n}"
        expected[message_id] = (sender, f"re: {question}")
        body = json.dumps(
            text_payload(question, message_id=message_id, wa_id=sender, ts=base + n)
        ).encode()
        bodies.extend([(message_id, body)] * STORM_COPIES)
    rng.shuffle(bodies)
    assert len(bodies) == 1000

    async with (
        running_app(make_settings(postgres_database), fakes) as first,
        running_app(make_settings(postgres_database), fakes) as second,
    ):
        apps = [first, second]
        gate = asyncio.Semaphore(50)

        async def deliver(index: int, body: bytes) -> httpx.Response:
            async with gate:
                return await apps[rng.randrange(2) if index % 7 else index % 2].post(body)

        responses = await asyncio.gather(*(deliver(i, b) for i, (_, b) in enumerate(bodies)))
        assert Counter(r.status_code for r in responses) == {200: 1000}
        # Deduplication happened at the door: each message was recorded by exactly one POST.
        assert sum(r.json()["recorded"] for r in responses) == STORM_MESSAGES
        await settle_everywhere(apps)
        assert await states(first.services.store) == {MessageState.DONE: STORM_MESSAGES}

    assert len(fakes.gemini_calls) == STORM_MESSAGES
    asked = Counter(b["contents"][-1]["parts"][-1]["text"] for b in fakes.gemini_bodies())
    assert asked == Counter(f"storm question {n}" for n in range(STORM_MESSAGES))
    sent = Counter((m["to"], m["text"]["body"]) for m in fakes.sent())
    assert sent == Counter(expected.values())  # every message answered once, to its sender
    assert len(fakes.send_attempts()) == STORM_MESSAGES
    read = Counter(m["message_id"] for m in fakes.read_receipts())
    assert read == Counter(expected.keys())  # and marked read once
