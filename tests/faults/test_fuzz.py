"""Fuzzing POST /webhook with Hypothesis, and the OpenAPI routes with Schemathesis.

Part of the fault suite (`make faults`), not of `make test`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import string
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from db_support import fresh_postgres_database
from helpers import PHONE_NUMBER_ID, Harness, make_settings, running_app, text_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from respx_upstreams import FakeUpstreams
from schemathesis import APIOperation, BaseSchema, Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi as schemathesis_asgi

from main import MAX_BODY_BYTES, create_app
from service.lifespan import Services
from storage.store import Store
from webhook.arrivals import Arrival

pytestmark = pytest.mark.fault

FUZZ_EXAMPLES = 10_000

# --- Generators ---------------------------------------------------------------------------------
#
# Hypothesis makes each decision that shapes a body: the kind of breakage, the position in the
# document that is broken, the value put there, the bytes. The many field values of the
# Meta-shaped payload under it come from a `random.Random` that Hypothesis seeds: drawn one by
# one through Hypothesis they cost about 10 ms an example, too slow for 10,000 a database.

AWKWARD = [
    "",
    " ",
    "0",
    "-1",
    "1e999",
    "NaN",
    "null",
    "true",
    "{}",
    "[]",
    '"',
    "\\",
    "\r\n",
    "%s%n",
    "' OR 1=1 --",
    "<script>",
    PHONE_NUMBER_ID,
    "16505551234",
    "US.13491208655302741918",
    "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
    "Olá, café?",
    "\u202eevil",
    "👍🏽",
    "٣٤٥",
    "\U0010ffff",
    "\ufeff",
    "x" * 255,
    "y" * 256,
]
NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 0.5, -0.0, 1e308, True]
KINDS = [*["text"] * 6, "image", "audio", "video", "document", "sticker", "location", "contacts"]
KINDS += ["interactive", "button", "reaction", "order", "system", "unsupported", "hologram"]


def text(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.4:
        return rnd.choice(AWKWARD)
    if roll < 0.6:
        return "".join(rnd.choices(string.printable, k=rnd.randrange(12)))
    if roll < 0.8:  # any code point but NUL and the surrogates (those: the unicode mode)
        planes = (0x250, 0xD800, 0x110000)
        points = [rnd.randrange(1, rnd.choice(planes)) for _ in range(rnd.randrange(10))]
        return "".join(chr(p if not 0xD800 <= p < 0xE000 else p + 0x800) for p in points)
    return str(rnd.randrange(10**16))


def digits(rnd: random.Random) -> str:
    return rnd.choice(["16505551234", "0", "1" * 20, str(rnd.randrange(10**15))])


def leaf(rnd: random.Random) -> Any:
    roll = rnd.random()
    if roll < 0.5:
        return text(rnd)
    if roll < 0.8:
        return rnd.choice(NUMBERS) if rnd.random() < 0.5 else rnd.uniform(-1e6, 1e6)
    return rnd.choice([None, True, False, [], {}])


def value_of(rnd: random.Random, depth: int = 2) -> Any:
    roll = rnd.random()
    if depth <= 0 or roll < 0.6:
        return leaf(rnd)
    if roll < 0.8:
        return [value_of(rnd, depth - 1) for _ in range(rnd.randrange(3))]
    return {text(rnd): value_of(rnd, depth - 1) for _ in range(rnd.randrange(3))}


def timestamp(rnd: random.Random) -> Any:
    roll = rnd.random()
    if roll < 0.5:
        return str(int(time.time()) - rnd.randrange(0, 200_000))
    if roll < 0.7:
        return str(rnd.randrange(2**34))
    if roll < 0.8:
        return rnd.randrange(2**34)
    return leaf(rnd)


def kind_body(rnd: random.Random, kind: str) -> Any:
    """What Meta puts under the message's `type` key, with random values."""
    if kind == "text":
        return {"body": text(rnd)}
    if kind in ("image", "audio", "video", "document", "sticker"):
        body = {"id": digits(rnd), "mime_type": rnd.choice(["image/jpeg", "audio/ogg", text(rnd)])}
        if rnd.random() < 0.5:
            body["caption"] = text(rnd)
        if rnd.random() < 0.2:
            body["voice"] = leaf(rnd)
        return body
    if kind == "location":
        return {"latitude": leaf(rnd), "longitude": leaf(rnd), "name": text(rnd)}
    if kind == "contacts":
        return [
            {"name": {"formatted_name": text(rnd)}, "phones": [{"phone": leaf(rnd)}]}
            for _ in range(rnd.randrange(3))
        ]
    if kind == "interactive":
        reply = rnd.choice(["button_reply", "list_reply"])
        return {"type": reply, reply: {"id": text(rnd), "title": text(rnd)}}
    if kind == "button":
        return {"text": text(rnd), "payload": text(rnd)}
    if kind == "reaction":
        return {"message_id": text(rnd), "emoji": text(rnd)}
    if kind == "order":
        items = [{"quantity": leaf(rnd), "item_price": leaf(rnd), "currency": text(rnd)}]
        return {"product_items": items * rnd.randrange(3), "text": text(rnd)}
    return value_of(rnd)


def message(rnd: random.Random) -> dict[str, Any]:
    kind = rnd.choice(KINDS)
    sender = digits(rnd) if rnd.random() < 0.8 else text(rnd)
    message_id = f"wamid.{rnd.randrange(10**12)}" if rnd.random() < 0.7 else text(rnd)
    found: dict[str, Any] = {
        "from": sender,
        "id": message_id,
        "timestamp": timestamp(rnd),
        "type": kind,
        kind: kind_body(rnd, kind),
    }
    if rnd.random() < 0.2:
        found["context"] = {"from": digits(rnd), "id": text(rnd)}
    if rnd.random() < 0.1:
        found["from_user_id"] = text(rnd)
    return found


def status(rnd: random.Random) -> dict[str, Any]:
    found = {
        "id": text(rnd),
        "status": rnd.choice(["sent", "delivered", "read", "failed", text(rnd)]),
        "timestamp": timestamp(rnd),
        "recipient_id": digits(rnd),
    }
    if rnd.random() < 0.5:
        found["errors"] = [{"code": leaf(rnd), "title": text(rnd)}]
    return found


def meta_payload(rnd: random.Random) -> dict[str, Any]:
    """A payload of Meta's shape (entries, changes, messages, statuses) with random values.

    About half is for this service's number: that is what is recorded and answered.
    """

    def value() -> dict[str, Any]:
        number = PHONE_NUMBER_ID if rnd.random() < 0.5 else rnd.choice(["1065", digits(rnd)])
        contacts = [{"profile": {"name": text(rnd)}, "wa_id": digits(rnd)}]
        if rnd.random() < 0.1:
            contacts[0]["user_id"] = text(rnd)
        return {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
            "contacts": contacts[: rnd.randrange(3)],
            "messages": [message(rnd) for _ in range(rnd.choice([0, 1, 1, 1, 2, 3]))],
            "statuses": [status(rnd) for _ in range(rnd.choice([0, 0, 1, 2]))],
        }

    entries = [
        {
            "id": digits(rnd),
            "changes": [
                {"field": rnd.choice(["messages"] * 5 + ["account_update"]), "value": value()}
                for _ in range(rnd.choice([1, 1, 2]))
            ],
        }
        for _ in range(rnd.choice([1, 1, 1, 2, 0]))
    ]
    return {"object": rnd.choice(["whatsapp_business_account"] * 9 + ["page"]), "entry": entries}


# What replaces a node of the document: every JSON type, drawn by Hypothesis (its integers,
# floats and strings find the edges: 2**64, -0.0, NaN, 1e308, NUL, odd code points).
json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.just("")
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a JSON document, the root included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


def replaced(node: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = replaced(node[path[0]], path[1:], new)
    return copy


SPLICE = "@@splice-7f3a@@"


def dumps(payload: Any, ascii_only: bool) -> bytes:
    """JSON as Meta sends it (non-ASCII escaped), or raw UTF-8, even with lone surrogates."""
    return json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def webhook_bodies(draw: st.DrawFn) -> bytes:
    """Valid Meta payloads, then the same broken in every way a body can be broken."""
    mode = draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "wrong-type",
                "truncated",
                "huge",
                "deep",
                "unicode",
                "bytes",
                "json",
            ]
        )
    )
    if mode == "bytes":
        return draw(st.binary(max_size=512))
    if mode == "json":
        return dumps(draw(json_values), draw(st.booleans()))
    payload = meta_payload(draw(st.randoms(use_true_random=True)))
    spots = paths(payload)
    spot = spots[draw(st.integers(0, len(spots) - 1))]
    ascii_only = draw(st.booleans())
    if mode == "wrong-type":  # any position, any other value (types mostly differ)
        payload = replaced(payload, spot, draw(json_values))
    elif mode == "unicode":  # lone surrogates and NULs too (escaped, as JSON carries them)
        payload = replaced(payload, spot, draw(st.text(st.characters(exclude_categories=[]))))
    elif mode == "huge":  # the largest rarely: they cost time to make, sign and send
        size = draw(st.sampled_from([300, 5000, 70_000, 70_000, 70_000, 1_000_000, MAX_BODY_BYTES]))
        char = draw(st.sampled_from("xé👍")) if size < 100_000 else "x"
        payload = replaced(payload, spot, char * size)
    elif mode in ("deep", "truncated"):
        payload = replaced(payload, spot, SPLICE)
    body = dumps(payload, ascii_only)
    if mode == "deep":
        depth = draw(st.integers(1, 1100) | st.sampled_from([5_000, 100_000]))
        opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        core = "0" if opening == "[" else "null"
        nested = (opening * depth + core + closing * depth).encode()
        body = body.replace(f'"{SPLICE}"'.encode(), nested, 1)
    elif mode == "truncated":
        body = body.replace(f'"{SPLICE}"'.encode(), b'"', 1)
        body = body[: draw(st.integers(0, len(body)))]
    return body


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


# --- Poison the fuzzer found: one bad message in a batch ------------------------------------------

GOOD_SENDER = "15550001111"


def batch_with(poison: dict[str, Any], status_event: dict[str, Any] | None = None) -> bytes:
    """One body with a good message and a poisoned one (or status), as Meta batches them."""
    payload = text_payload("A normal question", message_id="wamid.good", wa_id=GOOD_SENDER)
    value = payload["entry"][0]["changes"][0]["value"]
    if poison:
        first = value["messages"][0]
        value["messages"].append({**first, "id": "wamid.poisoned", "from": "15550002222", **poison})
    if status_event:
        value["statuses"] = [status_event]
    # ensure_ascii, as Meta sends it: lone surrogates go out escaped (\ud83d); and infinity as
    # the valid JSON number 1e999 (json.loads reads it as float infinity).
    return json.dumps(payload).replace("Infinity", "1e999").encode()


INFINITE_CODE_STATUS = {
    "id": "wamid.out-1",
    "status": "failed",
    "timestamp": "1749416383",
    "recipient_id": "16505551234",
    "errors": [{"code": float("inf"), "title": "Message undeliverable"}],
}

POISONS: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    # name: (fields of the poisoned message, a status event). Each of these once made
    # POST /webhook raise (a 500 and Meta redelivering the body for days).
    "lone-surrogate-in-text": ({"text": {"body": "broken emoji \ud83d"}}, None),
    "lone-surrogate-in-id": ({"id": "wamid.\udc00"}, None),
    "timestamp-beyond-int64": ({"timestamp": str(2**64)}, None),
    "timestamp-1e999": ({"timestamp": float("inf")}, None),
    "status-error-code-1e999": ({}, INFINITE_CODE_STATUS),
    "nul-in-text": ({"text": {"body": "nul \x00 inside"}}, None),
    "id-over-255": ({"id": "wamid." + "A" * 300}, None),
    "sender-over-255": ({"from": "1" * 300}, None),
}


@pytest.mark.parametrize("name", list(POISONS))
async def test_known_poison_in_a_batch_is_answered_around(
    database_url: str, fakes: FakeUpstreams, name: str
) -> None:
    """One bad message must not cost its batch-mates their answer (nor Meta a retry loop)."""
    poison, status_event = POISONS[name]
    async with running_app(make_settings(database_url), fakes) as harness:
        response = await harness.post(batch_with(poison, status_event))
        assert response.status_code == 200
        await harness.settle_all()
        replies = [(m["to"], m["text"]["body"]) for m in fakes.sent()]
        assert (GOOD_SENDER, "You said: A normal question") in replies
        assert await harness.services.store.inbox.state_of("wamid.good") == "done"


# --- Schemathesis: every route of the OpenAPI document ------------------------------------------


@pytest.fixture
def api_schema(tmp_path: Path, fakes: FakeUpstreams) -> Iterator[BaseSchema]:
    """The app's own /openapi.json; Schemathesis runs the app, lifespan included, itself."""
    app = create_app(make_settings(f"sqlite:///{tmp_path}/assistant.db"))
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        # Schemathesis keeps a started lifespan until the process exits; end this one now,
        # while its database still exists (its worker stops, its store closes).
        schemathesis_asgi.shutdown_lifespans()


def statuses_of(operation: APIOperation[Any, Any, Any, Any]) -> set[int]:
    """Run Schemathesis' generated cases for one operation; the status codes they got."""
    seen: set[int] = set()

    @settings(max_examples=50, deadline=None, database=None)
    @given(case=operation.as_strategy())
    def call(case: Case[Any]) -> None:
        response = case.call_and_validate(checks=[not_a_server_error])
        seen.add(response.status_code)

    call()
    return seen


def test_openapi_routes_never_answer_with_a_server_error(api_schema: BaseSchema) -> None:
    """GET /health, /ready, /metrics, /webhook and POST /webhook (unsigned: 401): never a 5xx.

    Schemathesis' pytest integration (`schemathesis.pytest.from_fixture` and
    `@schema.parametrize()`) needs `Function._nodeid`, which pytest 9 no longer has; its
    documented Hypothesis strategies (`operation.as_strategy()`) do the same per operation.
    """
    operations: dict[str, APIOperation[Any, Any, Any, Any]] = {}
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid OpenAPI
        operation = result.ok()
        operations[f"{operation.method.upper()} {operation.path}"] = operation
    assert {"GET /health", "GET /ready", "GET /webhook", "POST /webhook"} <= set(operations)
    seen = {name: statuses_of(operation) for name, operation in sorted(operations.items())}
    assert seen["GET /health"] == {200}
    assert seen["GET /ready"] == {200}
    assert seen["POST /webhook"] <= {401, 413}  # never signed: nothing is recorded
    assert seen["GET /webhook"] <= {200, 403}
    assert seen["GET /metrics"] == {200}  # no METRICS_TOKEN set
