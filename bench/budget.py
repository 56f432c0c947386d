"""Section 5, CPU per message: what each part of answering one message costs the service's code.

Each part is measured beside the same work done by hand in the same process. The service's CPU
per message decides how many messages per second a core can answer. Each part runs here, in the
bench process (uvloop, like uvicorn), paced by the clock at the end-to-end rate so that the event
loop idles between calls as it does in the service:

- a Graph API call: the app's `GraphClient` (httpx) against the fake; baseline: the same request
  bytes over the bench's raw HTTP/1.1 connection;
- a Gemini call with 20 turns of history: the app's `Gemini` (google-genai over aiohttp, the
  default, and over httpx beside it) against the fake; baseline: the same JSON body built with
  `json.dumps` and sent over the raw connection, the answer read with `json.loads`;
- the database work of one message: the app's `Store` on SQLite doing what the pipeline does
  for a text Gemini answers (record, look for work, claim, the conversation's state, the rate
  limits, history, the business's documents, save the reply and learn whether the user wrote
  since, keep the sent message's id for its statuses, close with its turns, count the usage);
  baseline: the very same SQL statements and parameters, captured from the Store's run,
  replayed through Python's `sqlite3` on a copy of the database as it was before.

CPU is this process's (all threads: aiosqlite runs statements on its own), per call.
"""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from sqlalchemy import event

from bench import servers
from bench.fake_client import Fake
from bench.load import Connection, post_request, sender, webhook_body
from bench.plan import Plan
from bench.report import Row, Section, ms, ratio, verdict
from domain.costs import TokenUse
from domain.types import MessageState, Role, Turn
from llm import Gemini, close_gemini_http, gemini_aiohttp_session, gemini_http_client
from ops.memory import settle_garbage_collector
from storage.delivery import SentMessage
from storage.rate_limits import Window
from storage.store import Store
from webhook.events import InboundMessage, parse_webhook
from whatsapp import GraphClient, graph_http_client

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

WINDOWS = (Window("minute", 60, 12), Window("day", 86400, 300))  # the defaults
DEBOUNCE, DEBOUNCE_MAX = 3.0, 15.0  # MESSAGE_DEBOUNCE_SECONDS and _MAX_SECONDS, the defaults
COMMANDS = ("/reset", "/forget")


async def paced_cpu(call: Callable[[int], Awaitable[object]], count: int, rate: float) -> float:
    """CPU seconds per call of `count` calls, one after another, started at `rate` per second."""
    for k in range(min(20, count)):  # warm up: connections, caches, lazy imports
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


async def _graph(fake_url: str, port: int, count: int, rate: float) -> tuple[float, float]:
    http = graph_http_client(fake_url, 10.0)
    graph = GraphClient(
        http,
        version=GRAPH_VERSION,
        phone_number_id=servers.PHONE_NUMBER_ID,
        token=SecretStr(servers.WHATSAPP_TOKEN),
    )
    try:
        ours = await paced_cpu(lambda k: graph.mark_read(f"wamid.budget-{k}"), count, rate)
    finally:
        await http.aclose()
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

    return ours, await raw_cpu(port, raw, count, rate)


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


async def one_answered_message(store: Store, message: InboundMessage) -> None:
    """The pipeline's store calls for a text Gemini answers, in its order, with the default
    settings (rate limits on, no budget, bursts on); tests/bench holds the two to the same
    statements."""
    await store.recorder.record([message])
    due = time.time() + DEBOUNCE  # the burst of one message, once the user stopped writing
    timing = {"debounce": DEBOUNCE, "longest": DEBOUNCE_MAX, "commands": COMMANDS}
    [ready] = await store.bursts.ready(10, now=due, **timing)  # type: ignore[arg-type]
    [[claimed]] = await store.bursts.claim(
        [ready.conversation_key],
        "budget",
        30.0,
        now=due,
        **timing,  # type: ignore[arg-type]
    )
    row = claimed.row
    await store.states.touch(row, row.sent_at)
    await store.rate_limits.check(row.conversation_key, row.received_at, WINDOWS)
    await store.conversations.history(row.conversation_key, 20, 16000)
    await store.knowledge.searchable(row.phone_number_id)
    await store.inbox.save_reply(row, "budget", f"**Echo:** {message.text}")
    wamid = f"wamid.out-{row.id}"  # what Meta answers the send with
    await store.delivery.sent(
        [SentMessage(wamid, row.conversation_key, row.phone_number_id, "text", inbox_id=row.id)]
    )
    turns = [Turn(Role.USER, message.text or ""), Turn(Role.MODEL, f"*Echo:* {message.text}")]
    await store.inbox.finish(row.id, "budget", MessageState.DONE, new_turns=turns)
    await store.usage.add(
        row.phone_number_id,
        row.conversation_key,
        answered=True,
        handoff=False,
        use=TokenUse(prompt=300, output=40),
        cost_usd=0.00027,
        per_user=False,
    )


Statement = tuple[str, Any, bool]  # SQL, parameters, executemany


async def _database(workdir: Path, count: int, rate: float) -> tuple[float, float]:
    """Ours, then the baseline, each from the same empty database.

    The statements to replay are captured in a pass of their own, since listening to every
    statement costs SQLAlchemy time that the service does not spend.
    """
    empty = workdir / "budget-empty.db"
    await (await Store.open(f"sqlite:///{empty}")).close()  # the schema, no rows
    messages = [
        parse_webhook(
            json.loads(webhook_body(f"wamid.budget-db-{k:06d}", sender(k % 500)))
        ).messages[0]
        for k in range(count + 20)
    ]
    statements, spans = await _captured(_copy(empty, workdir / "budget-captured.db"), messages)
    store = await Store.open(f"sqlite:///{_copy(empty, workdir / 'budget.db')}")
    try:
        ours = await paced_cpu(
            lambda k: one_answered_message(store, messages[_index(k, count)]), count, rate
        )
    finally:
        await store.close()
    replay = sqlite3.connect(
        _copy(empty, workdir / "budget-replay.db"), isolation_level=None, check_same_thread=False
    )
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
            replay.execute(f"PRAGMA {pragma}")

        async def replay_message(k: int) -> None:
            first, end = spans[_index(k, count)]
            for sql, parameters, many in statements[first:end]:
                run = replay.executemany if many else replay.execute
                run(sql, parameters).fetchall()

        baseline = await paced_cpu(replay_message, count, rate)
    finally:
        replay.close()
    return ours, baseline


def _index(k: int, count: int) -> int:
    """The message of `paced_cpu`'s call `k`: its warm-up calls (k < 0) take those past `count`."""
    return k if k >= 0 else count - 1 - k


def _copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


async def _captured(
    path: Path, messages: list[InboundMessage]
) -> tuple[list[Statement], dict[int, tuple[int, int]]]:
    """Every statement the Store runs for each message, in the order `paced_cpu` sends them
    (its warm-up first), with their parameters; and each message's span of them."""
    count = len(messages) - 20
    store = await Store.open(f"sqlite:///{path}")
    statements: list[Statement] = []
    spans: dict[int, tuple[int, int]] = {}

    def capture(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
        statements.append((args[2], args[3], bool(args[5])))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        for k in [*range(-1, -21, -1), *range(count)]:
            first = len(statements)
            await one_answered_message(store, messages[_index(k, count)])
            spans[_index(k, count)] = (first, len(statements))
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
        await store.close()
    return statements, spans


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
    graph, graph_base = await _graph(fake.process.url, port, count, rate)
    gemini, gemini_httpx, gemini_base = await _gemini(fake.process.url, port, count, rate)
    database, database_base = await _database(workdir, count, rate)
    total = 2 * graph + gemini + database
    total_base = 2 * graph_base + gemini_base + database_base
    section.rows += [
        Row("Graph API call (httpx)", ms(graph_base), ms(graph), ratio(graph, graph_base)),
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
            "≤ 10 ms",
            verdict(total <= 0.010),
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
