"""Several instances on one database, and a process killed mid-answer: nothing lost or doubled."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import httpx
from fake_upstreams import FakeServer
from helpers import APP_SECRET, load_payload, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer
from running import (
    fast_takeover_env,
    instances,
    settle_everywhere,
    start_service,
    wait_for_async,
    wait_healthy,
)
from sqlalchemy import update

from domain.types import MessageState
from storage.schema import inbox
from storage.store import Store
from webhook.signature import sign

TEXT_ID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="


async def test_duplicate_storm_across_two_instances_gives_one_answer(
    postgres_database: str, fakes: FakeUpstreams
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)  # keep the first claim in flight while duplicates arrive
        return gemini_answer("only once")

    fakes.gemini_queue.append(slow)
    payload = load_payload("text")
    async with instances(postgres_database, fakes, 2) as apps:
        responses = await asyncio.gather(*(apps[i % 2].post(payload) for i in range(50)))
        assert {r.status_code for r in responses} == {200}
        await settle_everywhere(apps)
    assert len(fakes.gemini_calls) == 1
    assert [m["text"]["body"] for m in fakes.sent()] == ["only once"]


async def test_two_instances_answer_every_message_once_in_order_per_user(
    postgres_database: str, fakes: FakeUpstreams
) -> None:
    rng = random.Random(7)

    async def jittery(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(rng.uniform(0, 0.03))
        question = json.loads(request.content)["contents"][-1]["parts"][0]["text"]
        return gemini_answer(f"re: {question}")

    fakes.gemini_queue.extend([jittery] * 100)
    base = int(time.time()) - 60

    async with instances(postgres_database, fakes, 2) as apps:

        async def user_writes(user: int) -> None:
            for n in range(5):
                payload = text_payload(
                    f"u{user}-m{n}",
                    message_id=f"wamid.u{user}m{n}",
                    wa_id=f"4477{user:04d}",
                    ts=base + n,
                )
                response = await apps[(user + n) % 2].post(payload)
                assert response.status_code == 200

        await asyncio.gather(*(user_writes(u) for u in range(20)))
        await settle_everywhere(apps)

    answers: dict[str, list[str]] = defaultdict(list)
    for message in fakes.sent():
        answers[message["to"]].append(message["text"]["body"])
    assert len(fakes.sent()) == 100
    assert len(fakes.gemini_calls) == 100
    for user in range(20):
        assert answers[f"4477{user:04d}"] == [f"re: u{user}-m{n}" for n in range(5)]


async def test_a_claim_whose_owner_died_is_taken_over_when_its_lease_expires(
    postgres_database: str, fakes: FakeUpstreams
) -> None:
    store = await Store.open(postgres_database)
    try:
        from webhook.events import parse_webhook

        await store.recorder.record(parse_webhook(load_payload("text")).messages)
        [(row_id, user_key)] = await store.inbox.claimable(5)
        assert (
            await store.inbox.claim(row_id, user_key, "instance-that-died", lease=600.0) is not None
        )
    finally:
        await store.close()
    settings = make_settings(postgres_database, lease_seconds=5)
    async with running_app(settings, fakes) as app:
        await app.settle()
        assert fakes.sent() == []  # the lease still holds: nobody else may answer yet
        async with app.services.store.engine.begin() as conn:  # the 600 s go by
            await conn.execute(update(inbox).values(lease_until=time.time() - 1))
        await app.settle_all(timeout=10)
    assert len(fakes.sent()) == 1


# --- A real process, killed with SIGKILL while Gemini holds its answer -------------------------


async def wait_until_done(database_url: str, message_id: str) -> None:
    """Once the row is done, no process will send for it again: the count is final."""
    store = await Store.open(database_url)
    try:
        deadline = time.monotonic() + 10
        while await store.inbox.state_of(message_id) != MessageState.DONE:
            assert time.monotonic() < deadline, "the message was not marked done"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


async def test_sigkill_mid_answer_loses_nothing(database_url: str, tmp_path: Path) -> None:
    body = json.dumps(load_payload("text")).encode()
    with FakeServer(gemini_delay=60) as fake:
        # The answers in the web process (no worker processes): SIGKILL hits the one answering.
        env = fast_takeover_env(fake, database_url) | {"WORKER_PROCESSES": "0"}
        first, url = start_service(env, tmp_path)
        try:
            await wait_healthy(url, first)
            async with httpx.AsyncClient() as client:
                headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
                response = await client.post(f"{url}/webhook", content=body, headers=headers)
            assert response.status_code == 200
            await wait_for_async(lambda: len(fake.recorded.gemini) == 1, 20, "the Gemini request")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert fake.recorded.sent == []

        fake.recorded.gemini_delay = 0
        second, url = start_service(env, tmp_path)
        try:
            await wait_healthy(url, second)
            await wait_for_async(
                lambda: len(fake.recorded.sent) >= 1, 30, "the reply after restart"
            )
            await wait_until_done(database_url, TEXT_ID)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    assert len(fake.recorded.sent) == 1
    assert fake.recorded.sent[0]["to"] == "16505551234"
