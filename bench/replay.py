"""Section 5's database part: what the answering side asks of the store for each message,
captured from the real Dispatcher and Pipeline (Graph and Gemini answering at once) as the
store calls made and the SQL statements they ran, then made again: the calls through the app's
`Store`, the statements through Python's `sqlite3` (the baseline)."""

from __future__ import annotations

import inspect
import json
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from answering.dispatcher import Dispatcher
from answering.pipeline import Pipeline
from bench import servers
from bench.load import sender, webhook_body
from bench.proc import paced_cpu, warm_up
from config import Settings
from domain.types import Turn
from gemini.requests import Inline
from llm import Answer, Gemini
from ops.metrics import Metrics
from storage.store import Store
from webhook.arrivals import Arrival
from webhook.events import InboundMessage, parse_webhook
from whatsapp import GraphClient

if TYPE_CHECKING:
    from google.genai import types


class InstantGraph(GraphClient):
    """What the pipeline asks of the Graph API for an answered text, answered at once (the
    Graph calls are measured on their own, in bench/budget.py). A subclass, so that mypy holds
    its methods to the client's signatures; anything else the pipeline would ask fails the
    bench."""

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


def answering_settings(database_url: str, debounce: float = DEBOUNCE_SECONDS) -> Settings:
    """The service's defaults (rate limits on, no budget, no console, bursts on with a short
    wait unless `debounce` is 0; the environment's settings apply, no `.env` file is read) for
    the bench's made-up business."""
    return Settings(
        message_debounce_seconds=debounce,
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


async def answer_each(
    path: Path,
    messages: list[InboundMessage],
    order: list[int],
    debounce: float = DEBOUNCE_SECONDS,
) -> Captured:
    """The answering side (the Recorder as a webhook calls it, then the Dispatcher and the
    Pipeline, as the service runs them, with Graph and Gemini answering at once) answers each
    message in `order`, one at a time, on the SQLite database at `path`."""
    settings = answering_settings(f"sqlite:///{path}", debounce)
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

    def capture(sql: str, parameters: Any, many: bool) -> None:
        statements.append((sql, parameters, many))

    captured = Captured({}, {})
    try:
        with store.db.watched(capture):
            await dispatcher.start(resume=False)
            for k in order:
                first_call, first_statement = len(calls), len(statements)
                if await store.recorder.record([messages[k]]):  # as the webhook hands it over
                    dispatcher.arrived([Arrival.of(messages[k], settings.command_words)])
                # Bursts on: the dispatcher looks once the burst is due, as in the service.
                await (dispatcher.settled() if debounce > 0 else dispatcher.wait_idle())
                captured.calls[k] = calls[first_call:]
                captured.statements[k] = statements[first_statement:]
    finally:
        await dispatcher.stop(settings.shutdown_grace_seconds)
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


async def capture(
    workdir: Path, count: int, debounce: float = DEBOUNCE_SECONDS
) -> tuple[Path, Captured]:
    """An empty database (the schema, no rows), and what the answering side does on a copy of
    it for the messages of `count` calls of `paced_cpu` (its warm-up's first)."""
    empty = workdir / "budget-empty.db"
    if not empty.exists():
        await (await Store.open(f"sqlite:///{empty}")).close()
    messages = bench_messages(count + warm_up(count))
    answered = copy_database(empty, workdir / f"budget-captured-{debounce}.db")
    return empty, await answer_each(answered, messages, paced_order(count), debounce)


async def replay_message(store: Store, captured: Captured, k: int, count: int) -> None:
    """`paced_cpu`'s call `k`: the store calls made for its message, made again."""
    for call in captured.calls[_index(k, count)]:
        await call.replay(store)


def _index(k: int, count: int) -> int:
    """The message of `paced_cpu`'s call `k`: its warm-up calls (k < 0) take those past `count`."""
    return k if k >= 0 else count - 1 - k


def copy_database(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target
