"""Running it: JSON logs that name ids by hash only, Prometheus metrics, and readiness."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import asyncpg
import pytest
from db_support import fresh_postgres_database, need_postgres
from helpers import (
    APP_SECRET,
    GEMINI_API_KEY,
    VERIFY_TOKEN,
    WHATSAPP_TOKEN,
    conversation,
    load_payload,
    make_settings,
    running_app,
    text_payload,
)
from respx_upstreams import FakeUpstreams, gemini_error, graph_error
from sqlalchemy.engine import make_url

from ops.logs import short_hash


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
        if found == wanted:
            return float(match.group(3))
    return 0.0


async def test_json_logs_carry_hashes_stage_and_duration_and_nothing_private(
    database_url: str, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url, log_format="json", log_level="DEBUG")
    fakes.gemini_queue.append(gemini_error(500, "INTERNAL"))  # a failure is logged too
    fakes.gemini_queue.extend([gemini_error(500, "INTERNAL")] * 2)
    async with running_app(settings, fakes) as harness:
        await harness.client.get(
            "/webhook",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "1",
            },
        )
        await harness.post(load_payload("batch"))
        await harness.post(load_payload("statuses"))
        await harness.settle()
    output = capsys.readouterr().err
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    answered = [line for line in lines if line.get("stage") == "answer"]
    assert len(answered) == 3
    assert {line["user_hash"] for line in answered} == {
        short_hash(conversation(u)) for u in ("16505551234", "233245551111", "5511955551234")
    }
    assert {line["tenant"] for line in answered} == {"default"}  # the business's name
    assert all(isinstance(line["duration_ms"], float) for line in answered)
    assert any(line.get("stage") == "gemini" for line in lines)

    for private in (
        APP_SECRET,
        VERIFY_TOKEN,
        WHATSAPP_TOKEN,
        GEMINI_API_KEY,
        "16505551234",
        "233245551111",
        "Hi there",
        "opening hours",
    ):
        assert private not in output, private


async def test_metrics_follow_messages_failures_and_tokens(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with running_app(make_settings(database_url), fakes) as harness:
        await harness.post(text_payload("hello", message_id="wamid.m1"))
        await harness.settle()
        fakes.gemini_queue.extend([gemini_error(503, "UNAVAILABLE")] * 3)
        await harness.post(text_payload("again", message_id="wamid.m2"))
        await harness.settle()
        fakes.send_queue.append(graph_error(400, 131026))
        await harness.post(text_payload("third", message_id="wamid.m3"))
        await harness.settle()
        await harness.post(b"junk")
        await harness.post(load_payload("text"), signature="sha256=bad")
        text = (await harness.client.get("/metrics")).text

    assert metric(text, "assistant_webhooks_total", outcome="ok") == 3
    assert metric(text, "assistant_webhooks_total", outcome="not_json") == 1
    assert metric(text, "assistant_webhooks_total", outcome="bad_signature") == 1
    business = {"business": "default"}
    assert metric(text, "assistant_messages_total", kind="text", outcome="done", **business) == 1
    assert metric(text, "assistant_messages_total", kind="text", outcome="failed", **business) == 2
    assert metric(text, "assistant_gemini_tokens_total", type="prompt", **business) == 24
    assert metric(text, "assistant_gemini_tokens_total", type="output", **business) == 14
    assert metric(text, "assistant_gemini_failures_total", **business) == 1
    assert metric(text, "assistant_gemini_latency_seconds_count") == 3
    assert metric(text, "assistant_graph_errors_total", call="send_text", code="131026") == 1
    assert metric(text, "assistant_graph_latency_seconds_count", call="send_text") == 3
    assert metric(text, "assistant_inbox_backlog") == 0
    assert metric(text, "assistant_answers_in_flight") == 0


async def test_metrics_token_is_required_when_set(database_url: str, fakes: FakeUpstreams) -> None:
    settings = make_settings(database_url, metrics_token="scrape-secret-1234")
    async with running_app(settings, fakes) as harness:
        assert (await harness.client.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await harness.client.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer scrape-secret-1234"}
        response = await harness.client.get("/metrics", headers=right)
    assert response.status_code == 200
    assert "assistant_webhooks_total" in response.text


async def test_ready_fails_when_the_sqlite_database_is_gone(
    tmp_path: Path, fakes: FakeUpstreams
) -> None:
    database = tmp_path / "ready.db"
    async with running_app(make_settings(f"sqlite:///{database}"), fakes) as harness:
        assert (await harness.client.get("/ready")).json() == {"status": "ready"}
        await harness.services.store.engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        database.mkdir()  # a directory where the file was: SQLite cannot open it
        response = await harness.client.get("/ready")
        assert response.status_code == 503
        assert (await harness.client.get("/health")).status_code == 200  # still alive
        os.rmdir(database)


async def test_ready_fails_when_postgresql_is_gone(
    postgres_url: str | None, fakes: FakeUpstreams
) -> None:
    server = need_postgres(postgres_url)
    async with (
        fresh_postgres_database(server) as url,
        running_app(make_settings(url), fakes) as harness,
    ):
        assert (await harness.client.get("/ready")).status_code == 200
        admin = await asyncpg.connect(server)
        try:
            name = make_url(url).database
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        assert (await harness.client.get("/ready")).status_code == 503
