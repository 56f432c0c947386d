"""Upstream faults: Gemini and Graph failing in every way, one matrix, each case in a precise state.

It ends in a precise end state: how many times each upstream was called, what the user was sent
(exactly once), and the state of each inbox row. Part of the fault suite (`make faults`), not of
`make test`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from helpers import Harness, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer, gemini_error, graph_error
from sqlalchemy import select

from domain.types import MessageState
from language.replies import Reply, reply_text
from storage.schema import inbox
from storage.store import Store

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
