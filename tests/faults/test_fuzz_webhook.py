"""Fuzzing POST /webhook with Hypothesis: signed broken bodies never make a server error.

Part of the fault suite (`make faults`), not of `make test`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from db_support import fresh_postgres_database
from fuzz_bodies import webhook_bodies
from helpers import Harness, make_settings, running_app, text_payload
from hypothesis import HealthCheck, given, settings
from respx_upstreams import FakeUpstreams

from main import MAX_BODY_BYTES, create_app
from service.lifespan import Services
from storage.store import Store
from webhook.arrivals import Arrival

pytestmark = pytest.mark.fault


FUZZ_EXAMPLES = 10_000


# --- The fuzz test --------------------------------------------------------------------------------


class ErrorRecords(logging.Handler):
    """ERROR records anywhere: the worker's error boundaries log with `log.exception`."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def backend_of(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@asynccontextmanager
async def side_database(
    backend: str, postgres_url: str | None, tmp_path: Path
) -> AsyncIterator[str]:
    """A database of its own for the bodies that are only recorded (nobody answers them)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/side.db"
        return
    assert postgres_url is not None
    async with fresh_postgres_database(postgres_url) as url:
        yield url


class NobodyAnswers:
    """In place of the worker: counts the wake-ups the route gives for new messages."""

    def __init__(self) -> None:
        self.notified = 0

    def arrived(self, arrivals: Sequence[Arrival]) -> None:
        self.notified += 1


@asynccontextmanager
async def recording_only_app(
    backend: str, postgres_url: str | None, tmp_path: Path, fakes: FakeUpstreams
) -> AsyncIterator[tuple[Harness, NobodyAnswers]]:
    """The real app (`create_app`, served over ASGI) that records and answers nothing.

    Its lifespan is not run: the store is opened here and no worker is started, so each
    body costs only what POST /webhook itself does (size limit, signature, parsing, the
    events logged, the messages recorded, the 200).
    """
    async with side_database(backend, postgres_url, tmp_path) as url:
        settings = make_settings(url)
        store = await Store.open(url)
        try:
            app = create_app(settings)
            answering = NobodyAnswers()
            services = Services(store, answering, app.state.metrics)
            app.state.services = services
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                yield Harness(settings, client, services, fakes), answering
        finally:
            await store.close()


def check_response(response: httpx.Response, body: bytes) -> None:
    assert response.status_code in (200, 413), (response.status_code, response.text)
    assert response.status_code == 200 or len(body) > MAX_BODY_BYTES


def test_fuzzed_webhook_bodies_never_make_a_server_error(
    database_url: str, postgres_url: str | None, fakes: FakeUpstreams, tmp_path: Path
) -> None:
    """10,000 signed bodies a database: never a 5xx, never an exception, and still answering.

    Every body goes through the real app over ASGI (`create_app`, its POST /webhook).
    About 1,000 go to an app that also answers (the worker answers what was recorded,
    through the fakes). The others, to keep the test near a minute a database, go to an
    app of the same build on a database of its own whose lifespan (and so worker) is not
    started: they are signed, checked, parsed and recorded, never answered. End to end each
    example costs about 14 ms, recorded only about 5.

    The apps run on an event loop of their own (a Runner): Hypothesis drives plain
    synchronous examples, and after the last one the test checks that every message recorded
    through the answering app was closed by the worker without an error logged, that the
    other app recorded messages, and that a normal message is still answered.
    """
    backend = backend_of(database_url)
    statuses: dict[int, int] = {}
    recorded_only = 0
    errors = ErrorRecords()
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        try:
            harness = runner.run(
                stack.enter_async_context(running_app(make_settings(database_url), fakes))
            )
            aside, nobody = runner.run(
                stack.enter_async_context(
                    recording_only_app(backend, postgres_url, tmp_path, fakes)
                )
            )
            logging.getLogger().addHandler(errors)  # after the apps configured logging

            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=[
                    HealthCheck.function_scoped_fixture,
                    HealthCheck.too_slow,
                    HealthCheck.data_too_large,
                    HealthCheck.large_base_example,
                ],
            )
            @given(body=webhook_bodies())
            def post(body: bytes) -> None:
                nonlocal recorded_only
                # One in ten to the answering app; the same one again when shrinking.
                answered = zlib.crc32(body) % 10 == 0
                response = runner.run((harness if answered else aside).post(body))
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                check_response(response, body)
                recorded_only += not answered

            post()
            waiting_aside = runner.run(aside.services.store.inbox.count_unfinished())
            runner.run(still_answers(harness))
        finally:
            logging.getLogger().removeHandler(errors)
            runner.run(stack.aclose())
    assert [r.getMessage() for r in errors.records] == []
    assert sum(statuses.values()) >= FUZZ_EXAMPLES
    assert recorded_only > FUZZ_EXAMPLES // 2
    # The recording-only app did record: its route woke the (absent) worker for each batch.
    assert waiting_aside > 0
    assert 0 < nobody.notified <= waiting_aside
    print(f"fuzz on {backend}: {recorded_only} recorded only; statuses {statuses}")


async def still_answers(harness: Harness) -> None:
    """Everything the fuzzing recorded gets closed, and a normal message is answered."""
    await harness.settle_all(timeout=120)
    before = len(harness.fakes.sent())
    body = text_payload("Are you still there?", message_id="wamid.after-fuzz", wa_id="31000000001")
    assert (await harness.post(body)).status_code == 200
    await harness.settle_all()
    assert [(m["to"], m["text"]["body"]) for m in harness.fakes.sent()[before:]] == [
        ("31000000001", "You said: Are you still there?")
    ]
