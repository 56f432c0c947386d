"""Fault injection: failing upstreams, duplicate storms, SIGKILL mid-answer. `make faults`.

Every test here ends in a precise end state: how many times each upstream was called, what
the user was sent (exactly once), and the state of each inbox row. Not part of `make test`
(the `fault` marker is excluded by default); CI runs them in a step of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_upstreams import FakeServer
from helpers import APP_SECRET, Harness, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer, gemini_error, graph_error
from running import (
    fast_takeover_env,
    settle_everywhere,
    start_service,
    wait_for_async,
    wait_healthy,
)
from sqlalchemy import select

from domain.types import MessageState
from language.replies import Reply, reply_text
from storage.schema import inbox
from storage.store import Store
from webhook.signature import sign

pytestmark = pytest.mark.fault

GEMINI_MAX_ATTEMPTS = 3
GRAPH_MAX_ATTEMPTS = 4
PERSISTENT = 10  # more queued failures than any retry budget: the fault never clears by itself
SENDER = "16505551234"
QUESTION = "Is the shop open on Sunday?"
ANSWER = f"You said: {QUESTION}"  # what the respx fake of Gemini answers by default


@dataclass(frozen=True)
class RowState:
    state: str
    error: str | None
    attempts: int


async def row_of(store: Store, message_id: str) -> RowState:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(inbox.c.state, inbox.c.error, inbox.c.attempts).where(
                    inbox.c.message_id == message_id
                )
            )
        ).one()
    return RowState(row.state, row.error, row.attempts)


async def states(store: Store) -> Counter[str]:
    async with store.engine.connect() as conn:
        return Counter((await conn.execute(select(inbox.c.state))).scalars())


# --- 1. Upstream faults: one matrix, every case ending in one precise state -------------------

Factory = Callable[[], httpx.Response | Exception]


def times(count: int, factory: Factory) -> tuple[Factory, ...]:
    return (factory,) * count


@dataclass(frozen=True)
class Fault:
    """What the fakes do to the first message, and everything that must follow from it."""

    gemini: tuple[Factory, ...] = ()  # queued Gemini replies, before the fake's own answer
    send: tuple[Factory, ...] = ()  # queued replies to the send of the answer
    gemini_calls: int = 1
    send_attempts: int = 1
    replies: tuple[str, ...] = (ANSWER,)  # what Meta accepted for the user, in order
    state: str = MessageState.DONE
    error: str | None = None  # what the row's error column must contain; None: no error
    logged: str | None = None  # a warning that must have been logged


def blocked() -> httpx.Response:
    return httpx.Response(200, json={"promptFeedback": {"blockReason": "SAFETY"}})


def no_parts() -> httpx.Response:
    return httpx.Response(
        200, json={"candidates": [{"content": {"role": "model"}, "finishReason": "STOP"}]}
    )


def malformed() -> httpx.Response:
    return httpx.Response(
        200, content=b'{"candidates": [{"content": ', headers={"Content-Type": "application/json"}
    )


GIVE_UP = GEMINI_MAX_ATTEMPTS
SORRY = (reply_text(Reply.APOLOGY, "en"),)
NO_ANSWER = "gemini gave no answer"

FAULTS: dict[str, Fault] = {
    "gemini-500-persistent": Fault(
        gemini=times(PERSISTENT, lambda: gemini_error(500, "INTERNAL")),
        gemini_calls=GIVE_UP,
        replies=SORRY,
        state=MessageState.FAILED,
        error="Gemini API error 500",
        logged=NO_ANSWER,
    ),
    "gemini-503-then-ok": Fault(gemini=(lambda: gemini_error(503, "UNAVAILABLE"),), gemini_calls=2),
    "gemini-429-persistent": Fault(
        gemini=times(PERSISTENT, lambda: gemini_error(429, "RESOURCE_EXHAUSTED")),
        gemini_calls=GIVE_UP,
        replies=SORRY,
        state=MessageState.FAILED,
        error="Gemini API error 429",
        logged=NO_ANSWER,
    ),
    "gemini-429-then-ok": Fault(
        gemini=times(GIVE_UP - 1, lambda: gemini_error(429, "RESOURCE_EXHAUSTED")),
        gemini_calls=GIVE_UP,
    ),
    "gemini-timeout": Fault(
        gemini=times(PERSISTENT, lambda: httpx.ReadTimeout("no answer in time")),
        gemini_calls=GIVE_UP,
        replies=SORRY,
        state=MessageState.FAILED,
        error="Gemini timed out",
        logged=NO_ANSWER,
    ),
    "gemini-blocked": Fault(
        gemini=(blocked,),
        replies=SORRY,
        state=MessageState.FAILED,
        error="prompt blocked",
        logged=NO_ANSWER,
    ),
    "gemini-empty": Fault(
        gemini=(no_parts,),
        replies=SORRY,
        state=MessageState.FAILED,
        error="no text",
        logged=NO_ANSWER,
    ),
    "gemini-malformed-json": Fault(
        gemini=(malformed,),
        replies=SORRY,
        state=MessageState.FAILED,
        error="malformed",
        logged=NO_ANSWER,
    ),
    "graph-500-then-ok": Fault(send=(lambda: graph_error(500, 1),), send_attempts=2),
    "graph-429-then-ok": Fault(send=(lambda: graph_error(429, 4),), send_attempts=2),
    "graph-130429-then-ok": Fault(send=(lambda: graph_error(400, 130429),), send_attempts=2),
    "graph-131047-expired": Fault(
        send=times(PERSISTENT, lambda: graph_error(400, 131047)),
        replies=(),
        state=MessageState.EXPIRED,
        error="code 131047",
        logged="code=131047",
    ),
    # A refused token (190) is not a passing fault: it stops the business until a new token
    # is set, so tests/answering/test_token_refused.py holds it.
    "graph-connection-refused": Fault(
        send=times(PERSISTENT, lambda: httpx.ConnectError("connection refused")),
        send_attempts=GRAPH_MAX_ATTEMPTS,
        replies=(),
        state=MessageState.FAILED,
        error="ConnectError",
        logged="graph send_text failed",
    ),
}


@pytest.fixture
async def app(database_url: str, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    """Started in the fixture, so that pytest's log capture sees what the app logs."""
    settings = make_settings(
        database_url,
        gemini_max_attempts=GEMINI_MAX_ATTEMPTS,
        graph_max_attempts=GRAPH_MAX_ATTEMPTS,
    )
    async with running_app(settings, fakes) as harness:
        yield harness


@pytest.mark.parametrize("name", list(FAULTS))
async def test_upstream_fault_ends_in_one_precise_state(
    app: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    fault = FAULTS[name]
    fakes = app.fakes
    caplog.set_level(logging.INFO)
    fakes.gemini_queue.extend(make() for make in fault.gemini)
    fakes.send_queue.extend(make() for make in fault.send)
    now = int(time.time())

    response = await app.post(text_payload(QUESTION, message_id="wamid.fault", ts=now - 2))
    assert response.status_code == 200
    await app.settle()

    assert len(fakes.gemini_calls) == fault.gemini_calls
    assert len(fakes.read_receipts()) == 1
    assert len(fakes.send_attempts()) == fault.send_attempts
    assert [(m["to"], m["text"]["body"]) for m in fakes.sent()] == [
        (SENDER, reply) for reply in fault.replies
    ]
    row = await row_of(app.services.store, "wamid.fault")
    assert row.state == fault.state
    assert row.attempts == 1  # claimed once: nothing was retried at the message level
    if fault.error is None:
        assert row.error is None
    else:
        assert row.error is not None and fault.error in row.error, row.error
    messages = [r.getMessage() for r in caplog.records]
    if fault.logged is not None:
        assert any(fault.logged in m for m in messages), messages
    # Never a crash: the worker's error boundary (log.exception) was not reached.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

    # The fault is over: the next message is answered normally, and only it.
    fakes.gemini_queue.clear()
    fakes.send_queue.clear()
    fakes.gemini_queue.append(gemini_answer("Back to normal."))
    response = await app.post(text_payload("Still there?", message_id="wamid.after", ts=now - 1))
    assert response.status_code == 200
    await app.settle()
    assert len(fakes.gemini_calls) == fault.gemini_calls + 1
    assert [m["text"]["body"] for m in fakes.sent()] == [*fault.replies, "Back to normal."]
    assert (await row_of(app.services.store, "wamid.after")).state == MessageState.DONE
    assert (await row_of(app.services.store, "wamid.fault")).state == fault.state
    assert await app.services.store.inbox.count_unfinished() == 0


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
