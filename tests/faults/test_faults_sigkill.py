"""SIGKILL during answering: a real service killed five times in a row, then a clean restart.

It ends in a precise end state: how many times each upstream was called, what the user was sent
(exactly once), and the state of each inbox row. Part of the fault suite (`make faults`), not of
`make test`.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_upstreams import FakeServer
from fault_support import states
from helpers import APP_SECRET, text_payload
from running import fast_takeover_env, start_service, wait_for_async, wait_healthy
from sqlalchemy import select

from domain.types import MessageState
from storage.schema import inbox
from storage.store import Store
from webhook.signature import sign

pytestmark = pytest.mark.fault


# --- 3. SIGKILL during answering, five times in a row, then a clean restart --------------------

KILLS = 5
USERS = 10


async def randomise_gemini_delay(fake: FakeServer, rng: random.Random) -> None:
    """The fake's one delay setting, changed every 50 ms: each answer takes 0.1 to 1 s."""
    while True:
        fake.recorded.gemini_delay = rng.uniform(0.1, 1.0)
        await asyncio.sleep(0.05)


async def post_batch(url: str, bodies: list[bytes]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{url}/webhook",
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": sign(body, APP_SECRET),
                    },
                )
                for body in bodies
            )
        )
    assert [r.status_code for r in responses] == [200] * len(bodies)


async def wait_all_finished(database_url: str, message_ids: list[str], timeout: float) -> None:
    """Once every row is closed no process will send for it again: the counts are final."""
    store = await Store.open(database_url)
    try:
        deadline = time.monotonic() + timeout
        while await store.inbox.count_unfinished():
            assert time.monotonic() < deadline, "messages were left unanswered after the kills"
            await asyncio.sleep(0.1)
        assert await states(store) == {MessageState.DONE: len(message_ids)}
    finally:
        await store.close()


async def attempts_of(database_url: str) -> dict[str, int]:
    store = await Store.open(database_url)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(select(inbox.c.text, inbox.c.attempts))
            return {row.text: row.attempts for row in rows}
    finally:
        await store.close()


class TimedList(list[dict[str, Any]]):
    """`fake.recorded.sent`, with the time at which the fake received each message."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: dict[str, Any]) -> None:
        self.times.append(time.monotonic())
        super().append(item)


def grown(items: list[Any], beyond: int) -> Callable[[], bool]:
    return lambda: len(items) > beyond


@dataclass
class Kill:
    at: float  # time.monotonic() of the SIGKILL
    restarted: float  # when the next process was started
    asked: int  # Gemini requests this process made
    answered: int  # replies it had sent


KILL_SETTLE_SECONDS = 0.5


async def test_sigkill_at_random_moments_loses_nothing_and_doubles_only_in_the_send_window(
    database_url: str, tmp_path: Path
) -> None:
    """A real `uvicorn main:app` is killed with SIGKILL 5 times while answering, then restarted.

    Each round starts a process on the same database, posts one message from each of 10 users,
    waits until the process is answering (it has asked the fake Gemini, whose answers take a
    random 0.1 to 1 s), kills it at a random moment, and starts the next. The sixth process is
    left to finish. Every message must then have been answered, in each user's order, and
    once, but for copies proven to come from the documented at-least-once window.
    """
    rng = random.Random(0xD1E)
    questions: list[str] = []
    message_ids: list[str] = []
    kills: list[Kill] = []
    base = int(time.time()) - 60
    with FakeServer() as fake:
        sent_log = TimedList()
        fake.recorded.sent = sent_log
        env = fast_takeover_env(fake, database_url) | {
            "RATE_LIMIT_PER_MINUTE": "0",
            "PART_INTERVAL_SECONDS": "0",
            "SHUTDOWN_GRACE_SECONDS": "10",
        }
        delays = asyncio.create_task(randomise_gemini_delay(fake, random.Random(0xDE1A)))
        try:
            for round_ in range(KILLS + 1):
                if kills:
                    kills[-1].restarted = time.monotonic()
                process, url = start_service(env, tmp_path)
                try:
                    await wait_healthy(url, process)
                    asked, answered = len(fake.recorded.gemini), len(sent_log)
                    batch = []
                    for user in range(USERS):
                        question = f"round {round_} question from user {user}"
                        message_id = f"wamid.kill-{round_}-{user}"
                        questions.append(question)
                        message_ids.append(message_id)
                        payload = text_payload(
                            question,
                            message_id=message_id,
                            wa_id=f"3161{user:07d}",
                            ts=base + round_,
                        )
                        batch.append(json.dumps(payload).encode())
                    await post_batch(url, batch)
                    if round_ == KILLS:
                        break  # the last process is left to finish everything
                    # A random moment once this process is answering (on PostgreSQL, after the
                    # dead one's leases ran out), while its Gemini calls take 0.1 to 1 s.
                    await wait_for_async(grown(fake.recorded.gemini, asked), 20, "a Gemini request")
                    await asyncio.sleep(rng.uniform(0, 0.8))
                    kill = Kill(
                        at=time.monotonic(),
                        restarted=0.0,
                        asked=len(fake.recorded.gemini) - asked,
                        answered=len(sent_log) - answered,
                    )
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=10)
                    kills.append(kill)
                except BaseException:
                    process.kill()
                    process.wait(timeout=10)
                    raise
            try:
                await wait_for_async(lambda: len(sent_log) >= len(questions), 60, "every answer")
                await wait_all_finished(database_url, message_ids, 30)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        finally:
            delays.cancel()
        sent = [(m["to"], m["text"]["body"]) for m in sent_log]
        times = list(sent_log.times)

    assert len(kills) == KILLS
    # Each kill landed while that process was answering: it had asked Gemini, and not everything
    # it asked had been sent yet for at least some of the kills.
    assert all(k.asked for k in kills), kills
    expected = {
        (f"3161{user:07d}", f"*Echo:* round {round_} question from user {user}")
        for round_ in range(KILLS + 1)
        for user in range(USERS)
    }
    assert set(sent) == expected  # nothing lost, nothing foreign
    # Exactly once, except in the documented at-least-once window: Graph accepted the reply,
    # then the process died before the row was marked done, and the next process (which finds
    # the saved answer) sends it again. Such a copy is proven to come from that window: its
    # first send reached the fake before a kill, the second came from a
    # later process, and the row was claimed more than once. Several rows can be in the window
    # at one kill (answers started together finish together), so there is no bound per kill.
    attempts = await attempts_of(database_url)
    for reply, count in Counter(sent).items():
        if count == 1:
            continue
        assert count == 2, (reply, count)
        first, second = (times[i] for i, s in enumerate(sent) if s == reply)
        # The copy came from a later process, after a kill (timing on a loaded 2-core machine is
        # too coarse to also pin the first send to the window before that kill). The first send
        # may reach the fake a moment after the kill: a request already written to the socket
        # still arrives, and the worker process dies a moment after the web process.
        assert any(first <= k.at + KILL_SETTLE_SECONDS and second >= k.restarted for k in kills), (
            reply,
            first,
            second,
            kills,
        )
        assert attempts[reply[1].removeprefix("*Echo:* ")] >= 2, reply
    # Each user's answers came in the order the user wrote.
    first_seen: dict[str, list[str]] = defaultdict(list)
    for to, body in sent:
        if body not in first_seen[to]:
            first_seen[to].append(body)
    for user in range(USERS):
        assert first_seen[f"3161{user:07d}"] == [
            f"*Echo:* round {r} question from user {user}" for r in range(KILLS + 1)
        ]
