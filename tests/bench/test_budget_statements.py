"""The bench's CPU-per-message section does the database work the pipeline really does: the
same statements, in the same order, as the app answering one text."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from helpers import FakeUpstreams, make_settings, running_app, text_payload
from sqlalchemy import event

from bench.budget import one_answered_message
from storage.store import Store
from webhook.events import parse_webhook


def capture(store: Store) -> list[str]:
    statements: list[str] = []

    def add(*args: object) -> None:  # (conn, cursor, statement, parameters, context, many)
        statements.append(str(args[2]))

    event.listen(store.engine.sync_engine, "before_cursor_execute", add)
    return statements


async def test_the_bench_runs_the_statements_of_one_answered_message(
    tmp_path: Path, fakes: FakeUpstreams
) -> None:
    # No timed polls for work: one landing between two of its statements would move them.
    # Bursts on (the default), with a short wait; nothing but the wait starts a look for work.
    settings = make_settings(
        f"sqlite:///{tmp_path}/app.db",
        rate_limit_per_minute=12,
        poll_interval_seconds=60,
        message_debounce_seconds=0.2,
    )
    async with running_app(settings, fakes) as app:
        await app.post(text_payload("warm up", message_id="wamid.warm"))
        await app.settle()
        answered = capture(app.services.store)
        await app.post(text_payload("hello", message_id="wamid.counted"))
        async with asyncio.timeout(10):
            while len(fakes.sent()) < 2:
                await asyncio.sleep(0.01)
        await app.settle()
    assert fakes.sent()[-1]["text"]["body"] == "You said: hello"

    store = await Store.open(f"sqlite:///{tmp_path}/bench.db")
    try:
        benched = capture(store)
        payload = json.dumps(text_payload("hello", message_id="wamid.bench")).encode()
        await one_answered_message(store, parse_webhook(json.loads(payload)).messages[0])
    finally:
        await store.close()

    assert len(benched) >= 10
    assert answered[: len(benched)] == benched
