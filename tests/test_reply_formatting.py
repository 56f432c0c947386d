"""What the app sends over ASGI: WhatsApp formatting, long answers split in order, resumed parts."""

from __future__ import annotations

import httpx
from helpers import TEXT_ID, Harness, load_payload, make_settings, running_app
from respx_upstreams import FakeUpstreams, gemini_answer, graph_error

from domain.types import MessageState
from markup.whatsapp import markdown_to_whatsapp

# --- Formatting and splitting of what is sent -------------------------------------------------


async def test_markdown_answer_is_sent_in_whatsapp_formatting(harness: Harness) -> None:
    answer = "## Colours\n\n* **Blue**: in stock\n* ~~Red~~: sold out\n\nSee [our shop](https://shop.test)."
    harness.fakes.gemini_queue.append(gemini_answer(answer))
    await harness.post(load_payload("text"))
    await harness.settle()
    body = harness.fakes.sent()[0]["text"]["body"]
    assert body == (
        "*Colours*\n\n- *Blue*: in stock\n- ~Red~: sold out\n\nSee our shop (https://shop.test)."
    )


async def test_long_answer_is_split_in_order_within_4096(harness: Harness) -> None:
    paragraphs = [f"Paragraph {i}. " + "Some words here. " * 30 for i in range(20)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 10_000
    harness.fakes.gemini_queue.append(gemini_answer(answer))
    await harness.post(load_payload("text"))
    await harness.settle()
    parts = [m["text"]["body"] for m in harness.fakes.sent()]
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert "".join(parts) == markdown_to_whatsapp(answer)
    assert all(p.endswith("\n\n") for p in parts[:-1])  # cut at paragraph boundaries


async def test_a_part_refused_for_good_stops_the_reply_and_fails_the_message(
    harness: Harness,
) -> None:
    answer = "\n\n".join(f"Sentence number {i} is here. " * 20 for i in range(12))
    harness.fakes.gemini_queue.append(gemini_answer(answer))
    harness.fakes.send_queue.extend([httpx.Response(200, json={"messages": [{"id": "a"}]})])
    harness.fakes.send_queue.extend([graph_error(400, 100)])  # second part refused for good
    await harness.post(load_payload("text"))
    await harness.settle()
    assert len(harness.fakes.send_attempts()) == 2
    assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.FAILED


async def test_split_answer_resumes_after_the_last_part_sent(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """A worker that died after sending part one left the reply and `parts_sent=1` behind."""
    from storage.store import Store
    from webhook.events import parse_webhook

    answer = "\n\n".join(f"Part {n}. " + "word " * 700 for n in range(3))
    store = await Store.open(database_url)
    try:
        await store.recorder.record(parse_webhook(load_payload("text")).messages)
        [(row_id, user_key)] = await store.inbox.claimable(10)
        row = await store.inbox.claim(row_id, user_key, "crashed-owner", 0.5)
        assert row is not None
        assert await store.inbox.save_reply(row, "crashed-owner", answer) is False
        assert await store.inbox.mark_parts_sent(row.id, "crashed-owner", 1)
    finally:
        await store.close()
    async with running_app(make_settings(database_url), fakes) as harness:
        await harness.settle_all()
        assert await harness.services.store.inbox.state_of(TEXT_ID) == MessageState.DONE
    assert fakes.gemini_calls == []
    sent = [m["text"]["body"] for m in fakes.sent()]
    assert [s.split(".")[0] for s in sent] == ["Part 1", "Part 2"]
    assert "Part 0" not in "".join(sent)
    assert all(m["to"] == "16505551234" for m in fakes.sent())
