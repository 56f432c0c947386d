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

import gc
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from bench import servers
from bench.fake_client import Fake
from bench.load import Connection, post_request
from bench.plan import Plan
from bench.proc import paced_cpu
from bench.replay import (
    DEBOUNCE_SECONDS,
    capture,
    copy_database,
    replay_calls,
    replay_statements,
)
from bench.report import Row, Section, ms, ratio, verdict
from domain.types import Role, Turn
from llm import Gemini, close_gemini_http, gemini_aiohttp_session, gemini_http_client
from ops.memory import settle_garbage_collector
from whatsapp import GraphClient, graph_http_client

if TYPE_CHECKING:
    pass

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


async def _database(
    workdir: Path, count: int, rate: float, debounce: float = DEBOUNCE_SECONDS
) -> tuple[float, float]:
    """Ours, then the baseline, each from the same empty database.

    What the answering side does for each message is captured in a pass of its own (listening
    to every statement costs SQLAlchemy time that the service does not spend); ours makes the
    same store calls again, the baseline runs the same SQL statements again. `debounce`: 0
    takes the path of a message answered alone (MESSAGE_DEBOUNCE_SECONDS=0).
    """
    empty, captured = await capture(workdir, count, debounce)
    ours = await replay_calls(
        copy_database(empty, workdir / f"budget-{debounce}.db"), captured, count, rate
    )
    baseline = await replay_statements(
        copy_database(empty, workdir / f"budget-replay-{debounce}.db"), captured, count, rate
    )
    return ours, baseline


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
    alone, alone_base = await _database(workdir, count, rate, debounce=0.0)
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
            "the same, each message answered alone (MESSAGE_DEBOUNCE_SECONDS=0; not in the sum)",
            ms(alone_base),
            ms(alone),
            ratio(alone, alone_base),
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
