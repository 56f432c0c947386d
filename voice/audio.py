"""Convert Gemini text-to-speech audio (raw PCM or WAV) into a WhatsApp voice note: Ogg/Opus."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # PyAV (FFmpeg's libraries) loads with the first conversion, not before
    from av.audio.frame import AudioFrame

log = logging.getLogger(__name__)

# WhatsApp shows the play button only for voice notes up to this size.
VOICE_NOTE_MAX_BYTES = 512 * 1024
SAMPLE_RATE = 48_000  # Opus's native rate; what the note is encoded at.
DEFAULT_PCM_RATE = 24_000  # Gemini TTS speaks at 24 kHz when the MIME type says no rate.
MAX_BITRATE = 32_000  # Clear speech; ~2 minutes fit in 512 KB.
MIN_BITRATE = 12_000  # Below this, Opus speech turns muffled; longer audio is refused.
# Ogg pages cost about 0.64 kbit/s at 50 Opus packets a second; 1 kbit/s leaves room.
CONTAINER_OVERHEAD_BPS = 1_000
SIZE_HEADROOM = 0.95  # Aim 5 % under the limit; at constant bitrate a note then always fits.
MAX_SECONDS = 300.0  # Five minutes at MIN_BITRATE: about 470 KB even at constant bitrate.

# Opus settings for speech: VoIP tuning, 20 ms frames, the slowest and best encoder search, and
# VBR, which spends fewer bits on pauses; if VBR overshoots, the note is encoded again at CBR.
OPUS_OPTIONS = {
    "application": "voip",
    "frame_duration": "20",
    "vbr": "on",
    "compression_level": "10",
}

PCM_TYPES = frozenset({"audio/l16", "audio/pcm"})
WAV_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
_CHANNEL_LAYOUTS = {1: "mono", 2: "stereo"}


class VoiceError(Exception):
    """The audio cannot become a voice note; `reason` says why (safe to log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Source:
    """How to demux the input: an FFmpeg format name and its options."""

    format: str
    options: dict[str, str]


def is_wav(audio: bytes) -> bool:
    """True when the bytes start with the RIFF/WAVE header."""
    return audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"


def parse_mime(mime_type: str) -> tuple[str, dict[str, str]]:
    """Split `audio/L16;codec=pcm;rate=24000` into ("audio/l16", {"codec": "pcm", ...})."""
    essence, *params = mime_type.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"')
    return essence.strip().lower(), parsed


def duration_seconds(pcm: bytes, rate: int = DEFAULT_PCM_RATE, channels: int = 1) -> float:
    """Playing time of raw signed 16-bit PCM."""
    return len(pcm) / (2 * channels * rate)


def choose_bitrate(seconds: float, max_bytes: int = VOICE_NOTE_MAX_BYTES) -> int:
    """Highest Opus bitrate (whole kbit/s, 12-32) whose note of this length fits max_bytes.

    Raises VoiceError when even MIN_BITRATE would not fit.
    """
    budget_bps = max_bytes * 8 * SIZE_HEADROOM / max(seconds, 0.001) - CONTAINER_OVERHEAD_BPS
    bitrate = min(MAX_BITRATE, int(budget_bps) // 1000 * 1000)
    if bitrate < MIN_BITRATE:
        raise VoiceError(f"{seconds:.0f} s of audio cannot fit in {max_bytes} bytes")
    return bitrate


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise VoiceError(f"bad MIME parameter {name}={value!r}") from None
    if not low <= number <= high:
        raise VoiceError(f"MIME parameter {name}={number} out of range")
    return number


def _pcm_source(params: dict[str, str]) -> tuple[_Source, int, int]:
    """Demuxer for raw PCM, with its rate and channel count from the MIME parameters."""
    rate = _int_param(params, "rate", DEFAULT_PCM_RATE, 8_000, 192_000)
    channels = _int_param(params, "channels", 1, 1, len(_CHANNEL_LAYOUTS))
    options = {"sample_rate": str(rate), "ch_layout": _CHANNEL_LAYOUTS[channels]}
    return _Source("s16le", options), rate, channels


def _source(audio: bytes, mime_type: str) -> tuple[_Source, bytes]:
    """Pick the demuxer; check what can be checked before decoding. Returns the bytes to read."""
    if not audio:
        raise VoiceError("empty audio")
    if is_wav(audio):
        return _Source("wav", {}), audio
    essence, params = parse_mime(mime_type)
    if essence in WAV_TYPES:
        raise VoiceError(f"{essence} without a RIFF/WAVE header")
    if essence not in PCM_TYPES:
        raise VoiceError(f"unsupported audio type {essence!r}")
    source, rate, channels = _pcm_source(params)
    block = 2 * channels
    whole = audio[: len(audio) - len(audio) % block]  # A trailing half sample is dropped.
    if not whole:
        raise VoiceError("audio shorter than one sample")
    seconds = duration_seconds(whole, rate, channels)
    if seconds > MAX_SECONDS:
        raise VoiceError(f"audio too long: {seconds:.0f} s > {MAX_SECONDS:.0f} s")
    return source, whole


def _decode(data: bytes, source: _Source) -> list[AudioFrame]:
    """Decode and resample to 48 kHz mono s16, stopping as soon as it runs over MAX_SECONDS."""
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    limit = int(MAX_SECONDS * SAMPLE_RATE)
    frames: list[AudioFrame] = []
    samples = 0
    data_file = io.BytesIO(data)
    with av.open(data_file, mode="r", format=source.format, options=source.options) as container:
        if not container.streams.audio:
            raise VoiceError("no audio stream")
        for frame in chain(container.decode(audio=0), [None]):
            for resampled in resampler.resample(frame):
                samples += resampled.samples
                if samples > limit:
                    raise VoiceError(f"audio too long: over {MAX_SECONDS:.0f} s")
                frames.append(resampled)
    if samples == 0:
        raise VoiceError("no audio samples")
    return frames


def _encode(frames: Iterable[AudioFrame], bitrate: int, *, vbr: bool = True) -> bytes:
    """Encode 48 kHz mono frames as Opus in an Ogg container, in memory."""
    import av

    options = {**OPUS_OPTIONS, "vbr": "on" if vbr else "off"}
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE, options=options)
        stream.layout = "mono"
        stream.format = "s16"
        stream.bit_rate = bitrate
        for frame in [*frames, None]:
            container.mux(stream.encode(frame))
    return buffer.getvalue()


def _convert(audio: bytes, mime_type: str, max_bytes: int) -> bytes:
    source, data = _source(audio, mime_type)
    frames = _decode(data, source)
    seconds = sum(frame.samples for frame in frames) / SAMPLE_RATE
    bitrate = choose_bitrate(seconds, max_bytes)
    note = _encode(frames, bitrate)
    if len(note) > max_bytes:
        # VBR overshot (noise-like audio at low bitrates does); constant bitrate cannot.
        note = _encode(frames, bitrate, vbr=False)
    if len(note) > max_bytes:
        raise VoiceError(f"voice note of {len(note)} bytes exceeds {max_bytes}")
    log.debug("voice note: %.1f s, %d bit/s, %d bytes", seconds, bitrate, len(note))
    return note


def to_voice_note(audio: bytes, mime_type: str, *, max_bytes: int = VOICE_NOTE_MAX_BYTES) -> bytes:
    """Turn Gemini TTS audio into Ogg/Opus, mono, 48 kHz, at most max_bytes.

    Input: raw signed 16-bit little-endian PCM (`audio/L16;codec=pcm;rate=24000`, also
    `audio/pcm`; `rate` defaults to 24000, `channels` to 1) or a complete WAV (`audio/wav`,
    `audio/x-wav`, or any bytes starting `RIFF....WAVE` whatever the MIME type says). Gemini's
    L16 is little-endian, unlike RFC 2586's. The bitrate is the highest of 12-32 kbit/s that keeps
    the note under max_bytes (see choose_bitrate); encoded at VBR, and again at CBR if VBR ran
    over. Audio longer than MAX_SECONDS is refused.
    Every failure raises VoiceError, never a PyAV error. CPU-bound: in async code use
    to_voice_note_async.
    """
    try:
        return _convert(audio, mime_type, max_bytes)
    except VoiceError:
        raise
    except Exception as exc:  # PyAV raises FFmpegError, ValueError, OSError...: all "bad audio".
        raise VoiceError(f"audio conversion failed: {type(exc).__name__}: {exc}") from exc


async def to_voice_note_async(
    audio: bytes, mime_type: str, *, max_bytes: int = VOICE_NOTE_MAX_BYTES
) -> bytes:
    """to_voice_note in a worker thread, so encoding does not block the event loop."""
    return await asyncio.to_thread(to_voice_note, audio, mime_type, max_bytes=max_bytes)
