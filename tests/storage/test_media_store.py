"""The media table (storage/media.py) on SQLite and PostgreSQL: a customer's file kept with the
user's turn when its message closes, a voice answer's Ogg kept (bounded), found by an
unguessable token, marked unavailable, and gone with /forget and the purge."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from helpers import load_payload
from sqlalchemy import text, update

from answering.media import media_note
from domain.types import MessageState, Role, Turn
from storage.database import create_engine
from storage.media import GONE, MAX_KEPT_BYTES, StoredMedia
from storage.schema import media
from storage.store import Store
from voice.audio import VOICE_NOTE_MAX_BYTES
from webhook.events import parse_webhook

OGG = b"OggS" + b"\x01voice answer" * 100
HOSTILE = '<script>alert("x")</script>.pdf'


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


def document_payload(
    message_id: str, filename: str = "price list.pdf", wa_id: str = "16505551234"
) -> Any:
    payload = copy.deepcopy(load_payload("image"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    message = value["messages"][0]
    message.pop("image")
    message["from"] = wa_id
    message.update(
        {
            "id": message_id,
            "type": "document",
            "document": {
                "id": "doc-media-1",
                "mime_type": "application/pdf",
                "sha256": "abc",
                "filename": filename,
                "caption": "prices?",
            },
        }
    )
    return payload


async def closed(
    store: Store, payload: Any, turns: tuple[Turn, ...], owner: str = "w1"
) -> tuple[int, str]:
    """Record, claim and close a message with `turns` (and its media); (row id, its key)."""
    await store.recorder.record(parse_webhook(payload).messages)
    [(row_id, key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, key, owner, 60)
    assert row is not None
    await store.inbox.finish(
        row.id,
        owner,
        MessageState.DONE,
        new_turns=turns,
        media_note=media_note(row.kind, row.payload),
    )
    return row.id, key


async def line_media(store: Store, key: str) -> list[tuple[str, StoredMedia | None]]:
    return [(e.role, e.media) for e in await store.transcripts.entries(key)]


async def test_a_customers_file_is_kept_with_their_turn(store: Store) -> None:
    said = (Turn(Role.USER, "[a document named 'x'] prices?"), Turn(Role.MODEL, "Here."))
    row_id, key = await closed(store, document_payload("wamid.d1", HOSTILE), said)
    [(_, mine), (_, answer)] = await line_media(store, key)
    assert answer is None
    assert mine is not None
    assert (mine.kind, mine.media_id, mine.mime_type, mine.filename, mine.voice, mine.kept) == (
        "document",
        "doc-media-1",
        "application/pdf",
        HOSTILE,  # kept as sent: the page escapes it
        False,
        False,
    )
    assert (mine.inbox_id, mine.role, mine.sha256, mine.unavailable) == (
        row_id,
        "user",
        "abc",
        None,
    )
    assert mine.phone_number_id == "106540352242922"
    assert await store.media.find(mine.token) == mine
    assert await store.media.data(mine.token) is None  # fetched from Meta, never kept here


async def test_a_file_name_no_database_takes_is_cleaned(store: Store) -> None:
    said = (Turn(Role.USER, "[a document]"),)
    _, key = await closed(store, document_payload("wamid.d6", "bad\x00name\ud800.pdf"), said)
    [(_, found)] = await line_media(store, key)
    assert found is not None and found.filename == "badname?.pdf"


async def test_a_voice_note_is_kept_as_one(store: Store) -> None:
    said = (Turn(Role.USER, "[a voice note]"),)
    _, key = await closed(store, load_payload("voice"), said)
    [(_, found)] = await line_media(store, key)
    assert found is not None
    assert (found.kind, found.voice, found.mime_type) == ("audio", True, "audio/ogg")


async def test_no_media_without_a_user_turn_or_for_text(store: Store) -> None:
    _, key = await closed(store, document_payload("wamid.d2"), ())
    assert await line_media(store, key) == []
    async with store.db.connect() as conn:
        assert (await conn.execute(media.select())).all() == []
    text = copy.deepcopy(load_payload("text"))
    _, key = await closed(store, text, (Turn(Role.USER, "hello"),))
    assert await line_media(store, key) == [("user", None)]


async def test_a_message_closed_by_another_owner_keeps_no_media(store: Store) -> None:
    await store.recorder.record(parse_webhook(document_payload("wamid.d3")).messages)
    [(row_id, key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, key, "w1", 60)
    assert row is not None
    note = media_note(row.kind, row.payload)
    turns = (Turn(Role.USER, "[doc]"),)
    assert not await store.inbox.finish(
        row_id, "w2", MessageState.DONE, new_turns=turns, media_note=note
    )
    async with store.db.connect() as conn:
        assert (await conn.execute(media.select())).all() == []


async def test_a_voice_answer_is_kept_once_and_bounded(store: Store) -> None:
    said = (Turn(Role.USER, "[a voice note]"), Turn(Role.MODEL, "We open at 6."))
    row_id, key = await closed(store, load_payload("voice"), said)

    def keep(data: bytes) -> Awaitable[bool]:
        return store.media.keep_voice_answer(
            conversation_key=key, phone_number_id="106540352242922", inbox_id=row_id, data=data
        )

    assert await keep(OGG)
    assert not await keep(b"OggS another")  # one per answer
    [(_, asked), (_, answer)] = await line_media(store, key)
    assert asked is not None and answer is not None
    assert (answer.role, answer.kind, answer.voice, answer.kept, answer.media_id) == (
        "model",
        "audio",
        True,
        True,
        None,
    )
    assert answer.mime_type == "audio/ogg"
    assert await store.media.data(answer.token) == OGG
    assert answer.token != asked.token


async def test_kept_bytes_stop_at_512_kib(store: Store) -> None:
    assert MAX_KEPT_BYTES == 512 * 1024 == VOICE_NOTE_MAX_BYTES
    keep = store.media.keep_voice_answer
    assert not await keep(conversation_key="k", phone_number_id="1", inbox_id=1, data=b"")
    big = b"O" * (512 * 1024 + 1)
    assert not await keep(conversation_key="k", phone_number_id="1", inbox_id=1, data=big)
    assert await keep(conversation_key="k", phone_number_id="1", inbox_id=2, data=big[:-1])


async def test_tokens_are_random_and_lookups_bounded(store: Store) -> None:
    tokens = set()
    for inbox_id in range(1, 21):
        assert await store.media.keep_voice_answer(
            conversation_key="k", phone_number_id="1", inbox_id=inbox_id, data=OGG
        )
    async with store.db.connect() as conn:
        tokens = {row.token for row in (await conn.execute(media.select())).all()}
    assert len(tokens) == 20
    assert all(len(t) == 24 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
    assert await store.media.find("") is None
    assert await store.media.find("x" * 65) is None
    assert await store.media.find("1") is None


async def test_a_file_meta_will_not_give_is_marked(store: Store) -> None:
    _, key = await closed(store, document_payload("wamid.d4"), (Turn(Role.USER, "[doc]"),))
    [(_, found)] = await line_media(store, key)
    assert found is not None
    await store.media.mark_unavailable(found.token, GONE)
    again = await store.media.find(found.token)
    assert again is not None and again.unavailable == "gone"


async def test_forget_and_purge_take_the_media(store: Store) -> None:
    said = (Turn(Role.USER, "[a voice note]"), Turn(Role.MODEL, "Hi."))
    row_id, key = await closed(store, load_payload("voice"), said)
    await store.media.keep_voice_answer(
        conversation_key=key, phone_number_id="106540352242922", inbox_id=row_id, data=OGG
    )
    another = document_payload("wamid.d5", wa_id="447700900123")
    other_id, other = await closed(store, another, (Turn(Role.USER, "[d]"),))
    assert other != key
    await store.conversations.forget(key)
    async with store.db.connect() as conn:
        left = (await conn.execute(media.select())).all()
    assert [(r.inbox_id, r.role) for r in left] == [(other_id, "user")]

    now = time.time()
    async with store.db.write() as conn:
        await conn.execute(update(media).values(created_at=now - 31 * 86400))
    await store.media.keep_voice_answer(
        conversation_key="fresh", phone_number_id="1", inbox_id=999, data=OGG
    )
    await store.purge(turns_before=now - 30 * 86400, inbox_before=now - 8 * 86400)
    async with store.db.connect() as conn:
        left = (await conn.execute(media.select())).all()
    assert [r.conversation_key for r in left] == ["fresh"]


async def test_media_sent_before_the_upgrade_is_found_in_the_inbox(empty_url: str) -> None:
    """Migration 0014: a customer's turn written before it gets its file from the inbox's
    payload (kept 8 days); a text, or a payload without a media id, gets none."""
    store = Store.over(create_engine(empty_url))
    try:
        await store.db.migrate("0012")
        voice = load_payload("voice")["entry"][0]["changes"][0]["value"]["messages"][0]
        earlier = [
            ("wamid.e1", "audio", voice),
            ("wamid.e2", "text", {"type": "text", "text": {"body": "hi"}}),
            ("wamid.e3", "image", {"type": "image", "image": {"caption": "no id"}}),
        ]
        async with store.engine.begin() as conn:
            for number, (message_id, kind, payload) in enumerate(earlier, start=1):
                await conn.execute(
                    text(
                        "INSERT INTO inbox (id, message_id, conversation_key, recipient, "
                        "phone_number_id, kind, payload, sent_at, received_at, state, attempts, "
                        "parts_sent, updated_at) VALUES (:id, :m, 'p:u', 'u', 'p', :kind, "
                        ":payload, 0, 1.0, 'done', 1, 0, 1.0)"
                    ),
                    {"id": number, "m": message_id, "kind": kind, "payload": json.dumps(payload)},
                )
                await conn.execute(
                    text(
                        "INSERT INTO turns (conversation_key, role, text, created_at, inbox_id) "
                        "VALUES ('p:u', 'user', 'said', 5.0, :id)"
                    ),
                    {"id": number},
                )
        await store.db.migrate()
        [voice_note, plain, no_id] = [e.media for e in await store.transcripts.entries("p:u")]
        assert plain is None and no_id is None
        assert voice_note is not None
        assert (voice_note.kind, voice_note.media_id, voice_note.voice) == (
            "audio",
            "1046531573838283",
            True,
        )
        assert (voice_note.mime_type, voice_note.created_at, voice_note.phone_number_id) == (
            "audio/ogg",
            5.0,
            "p",
        )
        assert len(voice_note.token) == 24
    finally:
        await store.close()
