"""Delivery through the app: what the service sends is kept with Meta's id, the webhook's statuses
move it forward (never answered), others' statuses are ignored, /metrics counts them."""

from __future__ import annotations

import time

import pytest
from delivery_support import statuses_payload
from helpers import Harness, conversation, text_payload
from respx_upstreams import gemini_answer

from domain.delivery import Delivery, Status
from domain.types import MessageState

USER = "16505551234"


async def answered(harness: Harness, text: str, message_id: str) -> str:
    """Post a message, wait for the answer; the answer's wamid."""
    calls = len(harness.fakes.graph_calls)
    assert (await harness.post(text_payload(text, message_id=message_id))).status_code == 200
    await harness.settle()
    sends = [i for i, (body, _) in enumerate(harness.fakes.graph_calls) if body.get("type")]
    return f"wamid.out-{[i for i in sends if i >= calls][-1]}"


async def test_an_answer_is_kept_with_its_wamid_and_its_statuses_move_it(harness: Harness) -> None:
    wamid = await answered(harness, "hello", "wamid.in-1")
    store = harness.services.store
    assert await store.delivery.of(wamid) is None  # sent, no status yet
    calls = len(harness.fakes.graph_calls)
    for events in (
        [(wamid, "delivered")],
        [(wamid, "sent")],  # late: changes nothing
        [(wamid, "read"), (wamid, "delivered")],
    ):
        response = await harness.post(statuses_payload(*events))
        assert response.status_code == 200 and response.json() == {"status": "ok", "recorded": 0}
    assert await store.delivery.of(wamid) == Delivery(Status.READ)
    await harness.settle()
    assert len(harness.fakes.graph_calls) == calls  # statuses are never answered
    entries = await store.transcripts.entries(conversation(USER))
    assert [(e.role, e.delivery) for e in entries] == [
        ("user", None),
        ("model", Delivery(Status.READ)),
    ]


async def test_a_failed_answer_shows_metas_error_and_metrics_count_it(harness: Harness) -> None:
    wamid = await answered(harness, "hello", "wamid.in-2")
    await harness.post(
        statuses_payload(
            (wamid, "sent"),
            (wamid, "failed", 131026, "Message undeliverable"),
            ("wamid.another-app", "read"),
            ("wamid.another-app", "failed", 131047, "Re-engagement message"),
        )
    )
    assert await harness.services.store.delivery.of(wamid) == Delivery(
        Status.FAILED, 131026, "Message undeliverable"
    )
    assert await harness.services.store.delivery.of("wamid.another-app") is None
    metrics = (await harness.client.get("/metrics")).text
    assert 'assistant_delivery_statuses_total{business="default",status="sent"} 1.0' in metrics
    assert 'assistant_delivery_statuses_total{business="default",status="failed"} 1.0' in metrics
    assert 'assistant_delivery_failures_total{business="default",code="131026"} 1.0' in metrics
    assert "131047" not in metrics  # another app's failure is not ours
    assert "assistant_ignored_statuses_total 2.0" in metrics


async def test_a_failure_code_no_32_bit_column_holds_is_kept_without_its_code(
    harness: Harness,
) -> None:
    wamid = await answered(harness, "hello", "wamid.in-big")
    response = await harness.post(statuses_payload((wamid, "failed", 2**40, "Odd failure")))
    assert response.status_code == 200
    assert await harness.services.store.delivery.of(wamid) == Delivery(
        Status.FAILED, None, "Odd failure"
    )


async def test_an_answer_that_cannot_be_kept_still_goes_out_once_and_is_logged(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def refuse(messages: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(harness.services.store.delivery, "sent", refuse)
    calls = len(harness.fakes.graph_calls)
    assert (await harness.post(text_payload("hi", message_id="wamid.in-lost"))).status_code == 200
    await harness.settle()
    sends = [body for body, _ in harness.fakes.graph_calls[calls:] if body.get("type") == "text"]
    assert len(sends) == 1  # sent once, never again because keeping it failed
    [line] = [r for r in caplog.records if "not kept for its statuses" in r.getMessage()]
    assert line.levelname == "WARNING" and "RuntimeError" in line.getMessage()
    assert USER not in line.getMessage()
    assert await harness.services.store.inbox.state_of("wamid.in-lost") == MessageState.DONE


async def test_every_part_of_a_long_answer_is_kept(harness: Harness) -> None:
    long_answer = "\n\n".join(f"Paragraph {k}: " + "word " * 700 for k in range(3))
    harness.fakes.gemini_queue.append(gemini_answer(long_answer))
    await answered(harness, "tell me everything", "wamid.in-3")
    texts = [i for i, (body, _) in enumerate(harness.fakes.graph_calls) if body.get("type")]
    wamids = [f"wamid.out-{i}" for i in texts]
    assert len(wamids) >= 2
    await harness.post(statuses_payload(*[(w, "read") for w in wamids[:-1]]))
    [_, answer] = await harness.services.store.transcripts.entries(conversation(USER))
    assert answer.delivery is None  # the last part has no status yet
    await harness.post(statuses_payload((wamids[-1], "delivered")))
    [_, answer] = await harness.services.store.transcripts.entries(conversation(USER))
    assert answer.delivery == Delivery(Status.DELIVERED)  # the part furthest behind


async def test_a_message_written_over_a_day_ago_is_shown_not_answered(harness: Harness) -> None:
    old = int(time.time()) - 25 * 3600
    await harness.post(text_payload("are you open?", message_id="wamid.old", ts=old))
    await harness.settle()
    store = harness.services.store
    assert harness.fakes.sent() == [] and harness.fakes.read_receipts() == []
    assert await store.inbox.state_of("wamid.old") == MessageState.EXPIRED
    [entry] = await store.transcripts.entries(conversation(USER))
    assert (entry.role, entry.text) == ("user", "are you open?")
    [listed] = await store.transcripts.listed(
        phone_number_ids=None, state=None, search=None, limit=5
    )
    assert listed.conversation.last_user_at == old  # its window closed a while ago
