"""A voice answer's Ogg kept for the console (answering/sending.py): the very bytes uploaded to
Meta, beside the answer; a failure to keep them stops nothing and is logged without the number."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from helpers import Harness, conversation, load_payload, make_settings, running_app
from respx_upstreams import FakeUpstreams, gemini_answer

from domain.types import MessageState

VOICE_MEDIA = "1046531573838283"
USER = "16505551234"


@pytest.fixture
async def app(database_url: str, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    async with running_app(make_settings(database_url), fakes) as harness:
        harness.fakes.add_media(VOICE_MEDIA, b"OggS the user's voice", "audio/ogg; codecs=opus")
        harness.fakes.gemini_queue.append(gemini_answer("We open at 6."))
        yield harness


async def test_the_uploaded_voice_note_is_kept_beside_the_answer(app: Harness) -> None:
    await app.post(load_payload("voice"))
    await app.settle()
    [(uploaded, _, _)] = app.fakes.uploads
    store = app.services.store
    entries = await store.transcripts.entries(conversation(USER))
    [asked, answer] = [(e.role, e.media) for e in entries]
    assert asked[1] is not None and not asked[1].kept  # the customer's: fetched from Meta
    assert answer[0] == "model" and answer[1] is not None and answer[1].kept
    assert await store.media.data(answer[1].token) == uploaded


async def test_a_voice_note_not_kept_still_answers(
    app: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(**_: object) -> bool:
        raise OSError("disk full")

    monkeypatch.setattr(app.services.store.media, "keep_voice_answer", broken)
    with caplog.at_level(logging.WARNING):
        await app.post(load_payload("voice"))
        await app.settle()
    assert len(app.fakes.voice_notes()) == 1 and app.fakes.sent() == []  # once, not as text too
    assert await app.services.store.inbox.state_of("wamid.voice-1") is MessageState.DONE
    [warning] = [r for r in caplog.records if "not kept for the console" in r.getMessage()]
    assert "OSError" in warning.getMessage() and USER not in warning.getMessage()
