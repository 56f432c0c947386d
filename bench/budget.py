"""Section 5, CPU per message: what each part of answering one message costs the service's code.

Each part is measured beside the same work done by hand in the same process. The service's CPU
per message decides how many messages per second a core can answer. Each part runs here, in the
bench process (uvloop, like uvicorn), paced by the clock at the end-to-end rate so that the event
loop idles between calls as it does in the service:

- a Graph API call: the app's `GraphClient` (httpx over aiohttp, the default, and over httpx's
  own transport beside it) against the fake; baseline: the same request bytes over the bench's
  raw HTTP/1.1 connection;
- a Gemini call with 20 turns of history: the app's `Gemini` (google-genai over aiohttp, the
  default, and over httpx beside it) against the fake; baseline: the same JSON body built with
  `json.dumps` and sent over the raw connection, the answer read with `json.loads`;
- the database work of one message: the store calls the service makes for a text Gemini
  answers (the Recorder's, as a webhook records it, then the Dispatcher's and the Pipeline's:
  look for work, claim, the conversation's state, the rate limits, history, the business's
  documents, save the reply and learn whether the user wrote since, keep the sent message's id
  for its statuses, close with its turns, count the usage...), captured from the real
  Dispatcher and Pipeline answering each message (Graph and Gemini answering at once) and made
  again through the app's `Store` on SQLite, on a copy of the database as it was before;
  baseline: the very same SQL statements and parameters, captured from that run, replayed
  through Python's `sqlite3` on another copy.

CPU is this process's (all threads: aiosqlite runs statements on its own), per call.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr
from sqlalchemy import event

from answering.dispatcher import Dispatcher
from answering.pipeline import Pipeline
from bench import servers
from bench.fake_client import Fake
from bench.load import Connection, post_request, sender, webhook_body
from bench.plan import Plan
from bench.report import Row, Section, ms, ratio, verdict
from config import Settings
from domain.types import Role, Turn
from gemini.requests import Inline
from llm import Answer, Gemini, close_gemini_http, gemini_aiohttp_session, gemini_http_client
from ops.memory import settle_garbage_collector
from ops.metrics import Metrics
from storage.store import Store
from webhook.arrivals import Arrival
from webhook.events import InboundMessage, parse_webhook
from whatsapp import GraphClient, graph_http_client

if TYPE_CHECKING:
    from google.genai import types

GRAPH_VERSION = "v25.0"
MODEL = "gemini-bench"
SYSTEM_PROMPT = "You are the helpful assistant of a small shop. Answer briefly and kindly."
HISTORY = [
    Turn(
        Role.USER if k % 2 == 0 else Role.MODEL,
        f"Turn {k}: a message of about the usual length here.",
    )
    for k in range(20)
]


def warm_up(count: int) -> int:
    """How many calls `paced_cpu` makes before it measures `count` of them."""
    return min(20, count)


async def paced_cpu(call: Callable[[int], Awaitable[object]], count: int, rate: float) -> float:
    """CPU seconds per call of `count` calls, one after another, started at `rate` per second."""
    for k in range(warm_up(count)):  # connections, caches, lazy imports
        await call(-1 - k)
    began_cpu, began = time.process_time(), time.monotonic()
    for k in range(count):
        await asyncio.sleep(max(0.0, began + k / rate - time.monotonic()))
        await call(k)
    return (time.process_time() - began_cpu) / count


async def raw_cpu(
    port: int, call: Callable[[Connection, int], Awaitable[object]], count: int, rate: float
) -> float:
    """`paced_cpu` of `call` over one raw keep-alive connection to the fake."""
    conn = await Connection.open(port)
    try:
        return await paced_cpu(lambda k: call(conn, k), count, rate)
    finally:
        conn.close()


async def _graph_cpu(
    fake_url: str, library: Literal["aiohttp", "httpx"], count: int, rate: float
) -> float:
    http = graph_http_client(fake_url, 10.0, library=library)
    graph = GraphClient(
        http,
        version=GRAPH_VERSION,
        phone_number_id=servers.PHONE_NUMBER_ID,
        token=SecretStr(servers.WHATSAPP_TOKEN),
    )
    try:
        return await paced_cpu(lambda k: graph.mark_read(f"wamid.budget-{k}"), count, rate)
    finally:
        await http.aclose()


async def _graph(fake_url: str, port: int, count: int, rate: float) -> tuple[float, float, float]:
    """Ours over aiohttp (the default), ours over httpx, and the raw baseline."""
    ours = await _graph_cpu(fake_url, "aiohttp", count, rate)
    over_httpx = await _graph_cpu(fake_url, "httpx", count, rate)
    path = f"/{GRAPH_VERSION}/{servers.PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {servers.WHATSAPP_TOKEN}"}

    async def raw(conn: Connection, k: int) -> None:
        body = json.dumps(
            {
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": f"wamid.budget-{k}",
                "typing_indicator": {"type": "text"},
            }
        ).encode()
        status, answer = await conn.request(post_request(port, path, body, headers))
        if status != 200:
            raise RuntimeError(f"fake Graph answered {status}")
        json.loads(answer)

    return ours, over_httpx, await raw_cpu(port, raw, count, rate)


async def _sdk_cpu(
    fake_url: str, transport: Literal["aiohttp", "httpx"], count: int, rate: float
) -> float:
    """CPU per Gemini call through google-genai over `transport` (GEMINI_TRANSPORT)."""
    http = (
        gemini_aiohttp_session(30.0, 16) if transport == "aiohttp" else gemini_http_client(30.0, 16)
    )
    gemini = Gemini(api_key=servers.GEMINI_API_KEY, model=MODEL, http=http, base_url=fake_url)

    async def sdk(k: int) -> None:
        await gemini.generate(SYSTEM_PROMPT, HISTORY, f"Question {k}?", max_output_tokens=800)

    try:
        return await paced_cpu(sdk, count, rate)
    finally:
        await gemini.aclose()
        await close_gemini_http(http)


async def _gemini(fake_url: str, port: int, count: int, rate: float) -> tuple[float, float, float]:
    """Ours over aiohttp (the default), ours over httpx, and the raw baseline."""
    ours = await _sdk_cpu(fake_url, "aiohttp", count, rate)
    over_httpx = await _sdk_cpu(fake_url, "httpx", count, rate)
    path = f"/v1beta/models/{MODEL}:generateContent"
    headers = {"x-goog-api-key": servers.GEMINI_API_KEY}

    async def raw(conn: Connection, k: int) -> None:
        turns = [*HISTORY, Turn(Role.USER, f"Question {k}?")]
        body = json.dumps(
            {
                "contents": [{"role": t.role, "parts": [{"text": t.text}]} for t in turns],
                "systemInstruction": {"parts": [{"text": SYSTEM_PROMPT}], "role": "user"},
                "generationConfig": {"maxOutputTokens": 800},
            }
        ).encode()
        status, answer = await conn.request(post_request(port, path, body, headers))
        if status != 200:
            raise RuntimeError(f"fake Gemini answered {status}")
        parts = json.loads(answer)["candidates"][0]["content"]["parts"]
        if not "".join(p.get("text", "") for p in parts).strip():
            raise RuntimeError("fake Gemini answered no text")

    return ours, over_httpx, await raw_cpu(port, raw, count, rate)


class InstantGraph(GraphClient):
    """What the pipeline asks of the Graph API for an answered text, answered at once (the
    Graph calls are measured on their own, above). A subclass, so that mypy holds its methods
    to the client's signatures; anything else the pipeline would ask fails the bench."""

    def __init__(self) -> None:  # no connection: nothing leaves the process
        self.sent = 0

    async def mark_read(self, message_id: str) -> None:
        return None

    async def send_text(self, to: str, body: str, *, reply_to: str | None = None) -> str:
        self.sent += 1
        return f"wamid.budget-out-{self.sent}"


class InstantGemini(Gemini):
    """Gemini's answer at once: the question in bold (so the reply goes through the markup).
    A subclass, like InstantGraph."""

    def __init__(self) -> None:  # no SDK client: nothing leaves the process
        pass

    async def generate(
        self,
        system_prompt: str,
        history: Sequence[Turn],
        message: str,
        *,
        max_output_tokens: int,
        attachments: Sequence[Inline] = (),
        tools: Sequence[types.ToolDict] = (),
        followups: Sequence[types.ContentUnionDict] = (),
        calling: str | None = None,
        before: Sequence[tuple[str, Sequence[Inline]]] = (),
    ) -> Answer:
        return Answer(text=f"**Echo:** {message}", prompt_tokens=300, output_tokens=40)


# Bursts on, as by default, with a wait short enough for a bench of a thousand messages.
DEBOUNCE_SECONDS = 0.01


def answering_settings(database_url: str) -> Settings:
    """The service's defaults (rate limits on, no budget, no console, bursts on with a short
    wait; the environment's settings apply, no `.env` file is read) for the bench's made-up
    business."""
    return Settings(
        message_debounce_seconds=DEBOUNCE_SECONDS,
        _env_file=None,  # type: ignore[call-arg]
        whatsapp_token=SecretStr(servers.WHATSAPP_TOKEN),
        verify_token=SecretStr(servers.VERIFY_TOKEN),
        app_secret=SecretStr(servers.APP_SECRET),
        phone_number_id=servers.PHONE_NUMBER_ID,
        gemini_api_key=SecretStr(servers.GEMINI_API_KEY),
        database_url=database_url,
    )


@dataclass(frozen=True)
class StoreCall:
    """One call the answering side made on one of the store's keepers (`store.inbox`, ...)."""

    keeper: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    async def replay(self, store: Store) -> None:
        await getattr(getattr(store, self.keeper), self.method)(*self.args, **self.kwargs)


class _Recording:
    """A keeper of the store whose coroutine methods write each call down before making it."""

    def __init__(self, keeper: object, name: str, calls: list[StoreCall]) -> None:
        self._keeper, self._name, self._calls = keeper, name, calls

    def __getattr__(self, method: str) -> Any:
        value = getattr(self._keeper, method)
        if not inspect.iscoroutinefunction(value):
            return value

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(StoreCall(self._name, method, args, kwargs))
            return await value(*args, **kwargs)

        return recorded


def record_calls(store: Store) -> list[StoreCall]:
    """Every call made from now on on the store's keepers, in order."""
    calls: list[StoreCall] = []
    for name, keeper in list(vars(store).items()):
        if name != "db":
            setattr(store, name, _Recording(keeper, name, calls))
    return calls


Statement = tuple[str, Any, bool]  # SQL, parameters, executemany


@dataclass
class Captured:
    """What the answering side did for each message: its calls on the store, and the SQL
    statements they ran (with their parameters); message k's are calls[k], statements[k]."""

    calls: dict[int, list[StoreCall]]
    statements: dict[int, list[Statement]]


async def answer_each(path: Path, messages: list[InboundMessage], order: list[int]) -> Captured:
    """The answering side (the Recorder as a webhook calls it, then the Dispatcher and the
    Pipeline, as the service runs them, with Graph and Gemini answering at once) answers each
    message in `order`, one at a time, on the SQLite database at `path`."""
    settings = answering_settings(f"sqlite:///{path}")
    store = await Store.open(settings.database_url)
    graph = InstantGraph()
    pipeline = Pipeline(
        settings=settings,
        store=store,
        graphs={servers.PHONE_NUMBER_ID: graph},
        gemini=InstantGemini(),
        metrics=Metrics(),
        owner="budget",
    )
    dispatcher = Dispatcher(settings=settings, store=store, pipeline=pipeline)
    calls = record_calls(store)
    statements: list[Statement] = []

    def capture(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
        statements.append((args[2], args[3], bool(args[5])))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    captured = Captured({}, {})
    try:
        await dispatcher.start(resume=False)
        for k in order:
            first_call, first_statement = len(calls), len(statements)
            if await store.recorder.record([messages[k]]):  # as the webhook hands it over
                dispatcher.arrived([Arrival.of(messages[k], settings.command_words)])
            await dispatcher.wait_idle()
            captured.calls[k] = calls[first_call:]
            captured.statements[k] = statements[first_statement:]
    finally:
        await dispatcher.stop(settings.shutdown_grace_seconds)
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
        await store.close()
    if graph.sent != len(order):
        raise RuntimeError(f"{graph.sent} of {len(order)} messages answered: see the log")
    return captured


async def replay_calls(path: Path, captured: Captured, count: int, rate: float) -> float:
    """`paced_cpu` of each message's store calls, made again on the database at `path`."""
    store = await Store.open(f"sqlite:///{path}")
    # The burst claims are made again with the `now` of their first run: the messages are
    # recorded as received an hour earlier, so that each burst is as due as it was then.
    store.recorder.clock = lambda: time.time() - 3600
    try:
        return await paced_cpu(lambda k: replay_message(store, captured, k, count), count, rate)
    finally:
        await store.close()


async def replay_statements(path: Path, captured: Captured, count: int, rate: float) -> float:
    """`paced_cpu` of each message's SQL statements, run again through Python's sqlite3 on the
    database at `path`."""
    replay = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
            replay.execute(f"PRAGMA {pragma}")

        async def replay_message(k: int) -> None:
            for sql, parameters, many in captured.statements[_index(k, count)]:
                run = replay.executemany if many else replay.execute
                run(sql, parameters).fetchall()

        return await paced_cpu(replay_message, count, rate)
    finally:
        replay.close()


def bench_messages(count: int) -> list[InboundMessage]:
    """`count` text messages, from 500 users in turn, as the webhook parses them."""
    return [
        parse_webhook(
            json.loads(webhook_body(f"wamid.budget-db-{k:06d}", sender(k % 500)))
        ).messages[0]
        for k in range(count)
    ]


def paced_order(count: int) -> list[int]:
    """The messages in the order `paced_cpu` takes them: its warm-up calls' first."""
    return [_index(k, count) for k in [*range(-1, -1 - warm_up(count), -1), *range(count)]]


async def capture(workdir: Path, count: int) -> tuple[Path, Captured]:
    """An empty database (the schema, no rows), and what the answering side does on a copy of
    it for the messages of `count` calls of `paced_cpu` (its warm-up's first)."""
    empty = workdir / "budget-empty.db"
    await (await Store.open(f"sqlite:///{empty}")).close()
    messages = bench_messages(count + warm_up(count))
    answered = _copy(empty, workdir / "budget-captured.db")
    return empty, await answer_each(answered, messages, paced_order(count))


async def replay_message(store: Store, captured: Captured, k: int, count: int) -> None:
    """`paced_cpu`'s call `k`: the store calls made for its message, made again."""
    for call in captured.calls[_index(k, count)]:
        await call.replay(store)


async def _database(workdir: Path, count: int, rate: float) -> tuple[float, float]:
    """Ours, then the baseline, each from the same empty database.

    What the answering side does for each message is captured in a pass of its own (listening
    to every statement costs SQLAlchemy time that the service does not spend); ours makes the
    same store calls again, the baseline runs the same SQL statements again.
    """
    empty, captured = await capture(workdir, count)
    ours = await replay_calls(_copy(empty, workdir / "budget.db"), captured, count, rate)
    baseline = await replay_statements(
        _copy(empty, workdir / "budget-replay.db"), captured, count, rate
    )
    return ours, baseline


def _index(k: int, count: int) -> int:
    """The message of `paced_cpu`'s call `k`: its warm-up calls (k < 0) take those past `count`."""
    return k if k >= 0 else count - 1 - k


def _copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


@contextmanager
def service_garbage_collector() -> Iterator[None]:
    """The garbage collector as the service's processes run it (ops/memory.py: what exists
    frozen, young passes every 10,000 allocations), for ours and the baselines alike; the
    bench's own settings come back after."""
    thresholds = gc.get_threshold()
    gc.collect()
    settle_garbage_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def budget(plan: Plan, workdir: Path, fake: Fake) -> Section:
    with service_garbage_collector():
        return await _budget(plan, workdir, fake)


async def _budget(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("5. CPU per message")
    await fake.reset(delay=0.0)
    count, rate = (50, plan.e2e_rate) if plan.quick else (500, plan.e2e_rate)
    port = fake.process.port
    graph, graph_httpx, graph_base = await _graph(fake.process.url, port, count, rate)
    gemini, gemini_httpx, gemini_base = await _gemini(fake.process.url, port, count, rate)
    database, database_base = await _database(workdir, count, rate)
    total = 2 * graph + gemini + database
    total_base = 2 * graph_base + gemini_base + database_base
    section.rows += [
        Row(
            "Graph API call (httpx over aiohttp, the default)",
            ms(graph_base),
            ms(graph),
            ratio(graph, graph_base),
        ),
        Row(
            "the same over httpx's own transport (GRAPH_TRANSPORT=httpx; not in the sum)",
            ms(graph_base),
            ms(graph_httpx),
            ratio(graph_httpx, graph_base),
        ),
        Row(
            "Gemini call, 20 turns of history (google-genai + aiohttp, the default)",
            ms(gemini_base),
            ms(gemini),
            ratio(gemini, gemini_base),
        ),
        Row(
            "the same over httpx (GEMINI_TRANSPORT=httpx; not in the sum)",
            ms(gemini_base),
            ms(gemini_httpx),
            ratio(gemini_httpx, gemini_base),
        ),
        Row(
            "database work of one message (SQLAlchemy + aiosqlite, SQLite)",
            ms(database_base),
            ms(database),
            ratio(database, database_base),
        ),
        Row(
            "sum for one answered message (2 Graph calls + Gemini + database)",
            ms(total_base),
            ms(total),
            ratio(total, total_base),
            "≤ 6 ms",
            verdict(total <= 0.006),
        ),
    ]
    section.notes += [
        (
            f"Each part {count} times, one call at a time, started {rate} per second; CPU of the "
            "bench process (all its threads) per call. Baselines: the same bytes over the bench's "
            "raw HTTP/1.1 connection (the answer parsed with json.loads), and the same SQL "
            "statements with the same parameters replayed through Python's sqlite3."
        ),
        (
            f"At {rate} messages/s the sum alone is {total * rate:.0%} of one core "
            f"({total_base * rate:.0%} for the baselines), before the web process, the worker's "
            "scheduling and logging; the end-to-end section's service CPU per message includes "
            "all of it."
        ),
    ]
    return section
