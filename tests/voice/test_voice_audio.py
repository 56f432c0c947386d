"""Gemini TTS audio (PCM and WAV) becomes a WhatsApp-ready Ogg/Opus voice note, or VoiceError."""

from __future__ import annotations

import array
import io
import math
import random
import wave
from collections.abc import Iterable
from dataclasses import dataclass

import av
import pytest

import voice.audio
from voice.audio import (
    MAX_BITRATE,
    MIN_BITRATE,
    VoiceError,
    choose_bitrate,
    duration_seconds,
    parse_mime,
    to_voice_note,
    to_voice_note_async,
)

PCM_MIME = "audio/L16;codec=pcm;rate=24000"
LIMIT = 512 * 1024  # WhatsApp's play-button limit, written out rather than imported.


@dataclass(frozen=True)
class Probe:
    """What a decoder says about a voice note."""

    container: str
    codec: str
    channels: int
    rate: int
    seconds: float


def sine_pcm(seconds: float, rate: int = 24_000, channels: int = 1) -> bytes:
    """A 440 Hz tone, signed 16-bit little-endian, interleaved when stereo."""
    samples = array.array("h")
    for i in range(int(seconds * rate)):
        value = int(12_000 * math.sin(2 * math.pi * 440 * i / rate))
        samples.extend([value] * channels)
    return samples.tobytes()


def speechlike_pcm(seconds: int, rate: int = 24_000) -> bytes:
    """Harmonics with a wandering pitch plus noise, in syllable-like bursts; a 5 s loop."""
    rnd = random.Random(7)
    samples = array.array("h")
    phase = noise = 0.0
    for i in range(5 * rate):
        t = i / rate
        phase += 2 * math.pi * (140 + 40 * math.sin(2 * math.pi * 0.7 * t)) / rate
        voiced = sum(math.sin(k * phase) / k for k in range(1, 8))
        noise += 0.3 * (rnd.uniform(-1, 1) - noise)
        envelope = abs(math.sin(2 * math.pi * 3.1 * t)) ** 0.5
        samples.append(int(max(-32_767, min(32_767, 9_000 * envelope * (voiced + 1.5 * noise)))))
    loop = samples.tobytes()
    return loop * (seconds // 5) + loop[: (seconds % 5) * rate * 2]


def wav_bytes(pcm: bytes, rate: int = 24_000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def probe(note: bytes) -> Probe:
    with av.open(io.BytesIO(note), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return Probe(
            container=container.format.name,
            codec=stream.codec_context.name,
            channels=stream.codec_context.channels,
            rate=stream.codec_context.sample_rate,
            seconds=samples / stream.codec_context.sample_rate,
        )


def assert_voice_note(note: bytes, seconds: float) -> None:
    found = probe(note)
    assert found.container == "ogg"
    assert found.codec == "opus"
    assert found.channels == 1
    assert found.rate == 48_000
    assert found.seconds == pytest.approx(seconds, rel=0.10)
    assert len(note) < LIMIT


SINE = sine_pcm(3.0)


@pytest.mark.parametrize(
    ("audio", "mime_type"),
    [
        (SINE, PCM_MIME),
        (SINE, "audio/l16; codec=pcm; rate=24000"),
        (SINE, "audio/L16"),  # No rate: Gemini's 24 kHz.
        (SINE, "audio/pcm;rate=24000"),
        (wav_bytes(SINE), "audio/wav"),
        (wav_bytes(SINE), "audio/x-wav"),
        (wav_bytes(SINE), PCM_MIME),  # The RIFF magic wins over the MIME type.
        (wav_bytes(SINE), "application/octet-stream"),
        (SINE + b"\x01", PCM_MIME),  # A trailing half sample is dropped.
    ],
)
def test_three_seconds_become_a_voice_note(audio: bytes, mime_type: str) -> None:
    assert_voice_note(to_voice_note(audio, mime_type), 3.0)


def test_other_rates_and_stereo_are_resampled_to_48k_mono() -> None:
    assert_voice_note(to_voice_note(sine_pcm(2.0, rate=16_000), "audio/L16;rate=16000"), 2.0)
    stereo = sine_pcm(2.0, rate=44_100, channels=2)
    assert_voice_note(to_voice_note(stereo, "audio/L16;rate=44100;channels=2"), 2.0)
    assert_voice_note(to_voice_note(wav_bytes(stereo, 44_100, 2), "audio/wav"), 2.0)


def test_long_speech_still_fits_the_play_button_limit() -> None:
    note = to_voice_note(speechlike_pcm(150), PCM_MIME)
    assert_voice_note(note, 150.0)


async def test_async_variant_converts_in_a_thread() -> None:
    assert_voice_note(await to_voice_note_async(wav_bytes(SINE), "audio/wav"), 3.0)


async def test_async_variant_raises_voice_error() -> None:
    with pytest.raises(VoiceError):
        await to_voice_note_async(b"", PCM_MIME)


JUNK = random.Random(3).randbytes(4096)


@pytest.mark.parametrize(
    ("audio", "mime_type", "reason"),
    [
        (b"", PCM_MIME, "empty"),
        (b"", "audio/wav", "empty"),
        (b"\x01", PCM_MIME, "shorter than one sample"),
        (JUNK, "audio/wav", "without a RIFF/WAVE header"),
        (b"RIFF\x00\x00\x00\x00WAVE" + JUNK, "audio/wav", "conversion failed"),
        (b"RIFF\xff\xff\xff\xffWAVEfmt " + JUNK, PCM_MIME, "conversion failed"),
        (SINE, "audio/mpeg", "unsupported audio type"),
        (SINE, "text/plain", "unsupported audio type"),
        (SINE, "", "unsupported audio type"),
        (SINE, "audio/L16;rate=abc", "bad MIME parameter"),
        (SINE, "audio/L16;rate=0", "out of range"),
        (SINE, "audio/L16;channels=6", "out of range"),
    ],
)
def test_bad_audio_raises_voice_error(audio: bytes, mime_type: str, reason: str) -> None:
    with pytest.raises(VoiceError) as caught:
        to_voice_note(audio, mime_type)
    assert reason in caught.value.reason


def test_pyav_errors_are_wrapped() -> None:
    with pytest.raises(VoiceError) as caught:
        to_voice_note(b"RIFF\x00\x00\x00\x00WAVE" + JUNK, "audio/wav")
    assert isinstance(caught.value.__cause__, av.FFmpegError)


def test_too_long_pcm_is_refused_before_decoding() -> None:
    with pytest.raises(VoiceError, match="too long"):
        to_voice_note(bytes(2 * 24_000 * 301), PCM_MIME)


def test_too_long_wav_is_refused_while_decoding() -> None:
    with pytest.raises(VoiceError, match="too long"):
        to_voice_note(wav_bytes(bytes(2 * 24_000 * 301)), "audio/wav")


def test_noise_that_overshoots_at_vbr_is_encoded_again_at_cbr() -> None:
    # At 12 kbit/s libopus's VBR spends ~17 kbit/s on white noise: 63 KB for 30 s; CBR 47 KB.
    noise = random.Random(1).randbytes(2 * 24_000 * 5) * 6
    assert choose_bitrate(30, max_bytes=52_500) == MIN_BITRATE
    note = to_voice_note(noise, PCM_MIME, max_bytes=52_500)
    assert len(note) <= 52_500
    assert probe(note).seconds == pytest.approx(30, rel=0.10)


def test_a_note_too_big_even_at_cbr_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, bool]] = []

    def oversized(frames: Iterable[object], bitrate: int, *, vbr: bool = True) -> bytes:
        calls.append((bitrate, vbr))
        return bytes(LIMIT + 1)

    monkeypatch.setattr(voice.audio, "_encode", oversized)
    with pytest.raises(VoiceError, match="exceeds"):
        to_voice_note(SINE, PCM_MIME)
    assert calls == [(MAX_BITRATE, True), (MAX_BITRATE, False)]


@pytest.mark.parametrize(
    ("seconds", "bitrate"),
    [(3, 32_000), (60, 32_000), (120, 32_000), (150, 25_000), (240, 15_000), (300, 12_000)],
)
def test_bitrate_drops_with_length(seconds: float, bitrate: int) -> None:
    assert choose_bitrate(seconds) == bitrate


def test_bitrate_refuses_what_cannot_fit() -> None:
    with pytest.raises(VoiceError):
        choose_bitrate(330)
    with pytest.raises(VoiceError):
        choose_bitrate(10, max_bytes=1_000)


def test_helpers() -> None:
    assert duration_seconds(bytes(48_000)) == 1.0
    assert duration_seconds(bytes(64_000), rate=16_000, channels=2) == 1.0
    assert parse_mime('audio/L16; codec=pcm; rate="24000"') == (
        "audio/l16",
        {"codec": "pcm", "rate": "24000"},
    )
