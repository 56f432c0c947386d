"""Tests for storage/delivery.py: statuses late, repeated and in any order move a sent message only
forward (sent < delivered < failed < read < played); others' messages are ignored."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator

import pytest

from domain.delivery import RANKS, Delivery, Status, of_line
from storage.delivery import SentMessage
from storage.store import Store
from webhook.events import ErrorInfo, StatusUpdate

NUMBER = "106540352242922"
KEY = f"{NUMBER}:16505551234"
FAILURE = ErrorInfo(131026, "Message undeliverable")
CHAIN = ["sent", "delivered", "read", "failed"]
# Every ordering of every non-empty set of the four statuses a text message gets: 64 of them.
SEQUENCES = [
    list(order)
    for size in range(1, len(CHAIN) + 1)
    for subset in itertools.combinations(CHAIN, size)
    for order in itertools.permutations(subset)
]


def status(wamid: str, name: str, error: ErrorInfo | None = None) -> StatusUpdate:
    errors = (error or FAILURE,) if name == "failed" else ()
    return StatusUpdate(wamid, name, NUMBER, 1_780_000_000, errors)


def expected(sequence: list[str]) -> Delivery:
    furthest = max(sequence, key=RANKS.__getitem__)
    if furthest == "failed":
        return Delivery(Status.FAILED, FAILURE.code, FAILURE.title)
    return Delivery(Status(furthest))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


async def sent(store: Store, *wamids: str) -> None:
    await store.delivery.sent([SentMessage(w, KEY, NUMBER, "text") for w in wamids])


async def test_every_order_of_statuses_in_separate_webhooks_ends_at_the_furthest(
    store: Store,
) -> None:
    wamids = [f"wamid.order-{k}" for k in range(len(SEQUENCES))]
    await sent(store, *wamids)
    for step in range(len(CHAIN)):  # each round is one webhook with the next event of each
        await store.delivery.apply(
            [
                status(w, seq[step])
                for w, seq in zip(wamids, SEQUENCES, strict=True)
                if step < len(seq)
            ]
        )
    for wamid, sequence in zip(wamids, SEQUENCES, strict=True):
        assert await store.delivery.of(wamid) == expected(sequence), sequence


async def test_every_order_of_statuses_in_one_webhook_ends_at_the_furthest(store: Store) -> None:
    wamids = [f"wamid.batch-{k}" for k in range(len(SEQUENCES))]
    await sent(store, *wamids)
    events = [status(w, name) for w, seq in zip(wamids, SEQUENCES, strict=True) for name in seq]
    random.Random(24).shuffle(events)
    repeated = events + events[: len(events) // 3]  # Meta repeats some
    applied = await store.delivery.apply(repeated)
    assert len(applied) == len(repeated)
    for wamid, sequence in zip(wamids, SEQUENCES, strict=True):
        assert await store.delivery.of(wamid) == expected(sequence), sequence


async def test_played_is_the_last_stage_of_a_voice_note(store: Store) -> None:
    await sent(store, "wamid.voice")
    for name in ("played", "read", "delivered", "failed", "sent"):
        await store.delivery.apply([status("wamid.voice", name)])
        assert await store.delivery.of("wamid.voice") == Delivery(Status.PLAYED)


async def test_a_failure_keeps_its_code_and_title_until_a_read_proves_delivery(
    store: Store,
) -> None:
    await sent(store, "wamid.f")
    window = ErrorInfo(131047, "Re-engagement message")
    await store.delivery.apply([status("wamid.f", "sent"), status("wamid.f", "failed", window)])
    failed = Delivery(Status.FAILED, 131047, "Re-engagement message")
    assert await store.delivery.of("wamid.f") == failed
    await store.delivery.apply([status("wamid.f", "failed", FAILURE), status("wamid.f", "sent")])
    assert await store.delivery.of("wamid.f") == failed  # the first failure stands
    await store.delivery.apply([status("wamid.f", "delivered")])
    assert await store.delivery.of("wamid.f") == failed
    await store.delivery.apply([status("wamid.f", "read")])
    assert await store.delivery.of("wamid.f") == Delivery(Status.READ)


async def test_a_long_title_is_cut_and_a_failure_without_error_keeps_none(store: Store) -> None:
    await sent(store, "wamid.long", "wamid.bare")
    await store.delivery.apply(
        [
            status("wamid.long", "failed", ErrorInfo(131000, "x" * 400)),
            StatusUpdate("wamid.bare", "failed", NUMBER, 1, ()),
        ]
    )
    assert await store.delivery.of("wamid.long") == Delivery(Status.FAILED, 131000, "x" * 255)
    assert await store.delivery.of("wamid.bare") == Delivery(Status.FAILED)


async def test_statuses_of_messages_the_service_did_not_send_are_ignored(store: Store) -> None:
    await sent(store, "wamid.ours")
    applied = await store.delivery.apply(
        [
            status("wamid.theirs", "read"),
            status("wamid.ours", "delivered"),
            status("wamid.ours", "deleted"),  # not a status this service knows
            status("", "read"),
        ]
    )
    assert [(a.wamid, a.status) for a in applied] == [("wamid.ours", "delivered")]
    assert await store.delivery.of("wamid.theirs") is None
    assert await store.delivery.of("wamid.ours") == Delivery(Status.DELIVERED)


async def test_a_message_kept_twice_is_kept_once_and_has_no_status_yet(store: Store) -> None:
    await sent(store, "wamid.twice")
    await sent(store, "wamid.twice")
    assert await store.delivery.of("wamid.twice") is None
    await store.delivery.apply([status("wamid.twice", "sent")])
    assert await store.delivery.of("wamid.twice") == Delivery(Status.SENT)


async def test_a_batch_of_statuses_is_one_statement(store: Store) -> None:
    wamids = [f"wamid.s{k}" for k in range(300)]
    await sent(store, *wamids)
    statements: list[str] = []
    with store.db.watched(lambda sql, _, __: statements.append(sql)):
        await store.delivery.apply(
            [status(w, name) for w in wamids for name in ("delivered", "sent", "read")]
        )
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("WITH")
    assert await store.delivery.of("wamid.s299") == Delivery(Status.READ)


def test_a_line_sent_in_parts_shows_a_failed_part_else_the_part_furthest_behind() -> None:
    read, delivered = Delivery(Status.READ), Delivery(Status.DELIVERED)
    failed = Delivery(Status.FAILED, 131026, "Message undeliverable")
    assert of_line([read, delivered, read]) == delivered
    assert of_line([read, failed, None]) == failed
    assert of_line([read, None]) is None
    assert of_line([]) is None
