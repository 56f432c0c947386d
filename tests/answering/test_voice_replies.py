"""Voice notes answered with voice notes: spoken by Gemini, Ogg/Opus mono 48 kHz under 512 KB,
uploaded and sent with `voice: true`; every failure sends the text instead."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from helpers import Harness, conversation, load_payload, make_settings, running_app, text_payload
from respx_upstreams import (
    FakeUpstreams,
    gemini_answer,
    gemini_error,
    graph_error,
    sine_pcm,
    speech_answer,
)

VOICE_MEDIA = "1046531573838283"
OGG_IN = b"OggS fake voice note from the user"
ANSWER = "We open at **6:00**, Monday to Saturday."


def pcm_seconds(pcm: bytes, rate: int = 24000) -> float:
    return len(pcm) / 2 / rate


def as_wav(pcm: bytes, rate: int = 24000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return out.getvalue()


def probe(ogg: bytes) -> tuple[str, str, int, int, float]:
    """(container, codec, channels, sample rate, seconds) of an Ogg file, decoded with PyAV."""
    with av.open(io.BytesIO(ogg), mode="r") as container:
        [stream] = container.streams.audio
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        rate = stream.codec_context.sample_rate
        return (
            container.format.name,
            stream.codec_context.name,
            stream.codec_context.channels,
            rate,
            samples / rate,
        )


async def voice_note_from_user(app: Harness, message_id: str = "wamid.voice-1") -> None:
    app.fakes.add_media(VOICE_MEDIA, OGG_IN, "audio/ogg; codecs=opus")
    payload = load_payload("voice")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = message_id
    await app.post(payload)
    await app.settle()


@pytest.fixture
async def app(database_url: str, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    async with running_app(make_settings(database_url), fakes) as harness:
        yield harness


@pytest.mark.parametrize("kind", ["pcm", "wav"])
async def test_a_voice_note_is_answered_with_a_voice_note(app: Harness, kind: str) -> None:
    pcm = sine_pcm(3.0)
    app.fakes.gemini_queue.append(gemini_answer(ANSWER))
    app.fakes.tts_queue.append(
        speech_answer(pcm) if kind == "pcm" else speech_answer(as_wav(pcm), "audio/wav")
    )
    await voice_note_from_user(app)

    [tts] = app.fakes.tts_calls
    body = json.loads(tts.read())
    spoken = body["contents"][0]["parts"][0]["text"]
    assert "We open at 6:00, Monday to Saturday." in spoken and "**" not in spoken
    assert "Kore" in json.dumps(body["generationConfig"]["speechConfig"])  # the prebuilt voice
    assert "systemInstruction" not in body  # TTS models take none: style is in the text
    [(ogg, form, mime)] = app.fakes.uploads
    assert (form, mime) == ({"messaging_product": "whatsapp", "type": "audio/ogg"}, "audio/ogg")
    container, codec, channels, rate, seconds = probe(ogg)
    assert (container, codec, channels, rate) == ("ogg", "opus", 1, 48000)
    assert abs(seconds - pcm_seconds(pcm)) <= 0.1 * pcm_seconds(pcm)
    assert len(ogg) < 512 * 1024
    [note] = app.fakes.voice_notes()
    assert note["audio"] == {"id": "1000111", "voice": True}
    assert app.fakes.sent() == []  # no text beside it
    history = await app.services.store.conversations.history(
        conversation("16505551234"), 10, 10_000
    )
    assert history[-1].text == ANSWER  # the history keeps the text
    metrics = (await app.client.get("/metrics")).text
    assert 'assistant_voice_replies_total{business="default"} 1.0' in metrics
    assert 'assistant_gemini_tokens_total{business="default",type="tts"} 230.0' in metrics


async def test_a_text_message_is_answered_with_text_when_auto(app: Harness) -> None:
    await app.post(text_payload("When do you open?", message_id="wamid.t1"))
    await app.settle()
    assert app.fakes.tts_calls == [] and app.fakes.voice_notes() == []
    assert len(app.fakes.sent()) == 1


@pytest.mark.parametrize(
    ("mode", "voice_in", "voice_out"),
    [("always", False, True), ("off", True, False), ("auto", True, True)],
)
async def test_voice_replies_modes(
    database_url: str, fakes: FakeUpstreams, mode: str, voice_in: bool, voice_out: bool
) -> None:
    async with running_app(make_settings(database_url, voice_replies=mode), fakes) as app:
        if voice_in:
            await voice_note_from_user(app)
        else:
            await app.post(text_payload("Hello", message_id="wamid.m1"))
            await app.settle()
    assert (len(fakes.voice_notes()), len(fakes.sent())) == ((1, 0) if voice_out else (0, 1))


def fallback(app_metrics: str, reason: str) -> bool:
    return f'assistant_voice_fallbacks_total{{business="default",reason="{reason}"}} 1.0' in (
        app_metrics
    )


@pytest.mark.parametrize(
    ("reason", "arrange"),
    [
        ("tts", lambda f: f.tts_queue.extend([gemini_error(500, "INTERNAL")] * 3)),
        ("conversion", lambda f: f.tts_queue.append(speech_answer(b"not audio", "audio/wav"))),
        ("upload", lambda f: f.upload_queue.extend([graph_error(500, 131053)] * 4)),
        ("too_long", lambda f: f.gemini_queue.append(gemini_answer("Long answer. " * 200))),
    ],
)
async def test_when_speaking_fails_the_text_is_sent(
    app: Harness, reason: str, arrange: Any
) -> None:
    arrange(app.fakes)
    await voice_note_from_user(app)
    assert app.fakes.voice_notes() == []
    assert len(app.fakes.sent()) >= 1  # the answer, as text
    metrics = (await app.client.get("/metrics")).text
    assert fallback(metrics, reason), metrics


async def test_a_voice_note_refused_by_meta_falls_back_to_text(app: Harness) -> None:
    app.fakes.send_queue.append(graph_error(400, 131053))  # the audio message itself
    await voice_note_from_user(app)
    assert len(app.fakes.sent()) == 1
    assert fallback((await app.client.get("/metrics")).text, "send")


async def test_an_answer_quotes_its_message_when_the_user_wrote_again(app: Harness) -> None:
    first = text_payload("What's the price of bread?", message_id="wamid.q1")
    second = text_payload("And of cake?", message_id="wamid.q2")
    # Both recorded before anything is answered (one webhook after another, as they arrive).
    first_message = first["entry"][0]["changes"][0]["value"]["messages"][0]
    second_message = second["entry"][0]["changes"][0]["value"]["messages"][0]
    second_message["timestamp"] = str(int(first_message["timestamp"]) + 1)
    both = first
    both["entry"][0]["changes"][0]["value"]["messages"].append(second_message)
    await app.post(both)
    await app.settle()
    sent = app.fakes.sent()
    assert [m.get("context") for m in sent] == [{"message_id": "wamid.q1"}, None]


async def test_a_lone_message_is_not_quoted(app: Harness) -> None:
    await app.post(text_payload("Hi", message_id="wamid.alone"))
    await app.settle()
    assert "context" not in app.fakes.sent()[0]
