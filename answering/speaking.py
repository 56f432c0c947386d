"""Answering a voice note with a voice note: the answer spoken, made Ogg/Opus, sent; else text."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from answering.job import Job
from config import Settings
from domain.costs import NOTHING_USED, TokenUse
from llm import Gemini, LLMError, Speech
from markup.spoken import speakable, too_long_to_speak
from ops.logs import short_hash
from ops.metrics import Metrics
from voice.audio import VoiceError, to_voice_note_async
from webhook.events import Kind
from whatsapp import GraphAPIError

log = logging.getLogger(__name__)

VOICE_NOTE_MIME = "audio/ogg"
GRAPH_OUTSIDE_WINDOW = 131047


def wants_voice(job: Job) -> bool:
    """VOICE_REPLIES (the business's): `auto` answers a voice note with one, `always` every
    answer of Gemini's, `off` none."""
    mode = job.business.voice_replies
    if mode == "always":
        return True
    if mode == "off":
        return False
    audio = job.row.payload.get(Kind.AUDIO.value)
    return job.row.kind == Kind.AUDIO and isinstance(audio, dict) and audio.get("voice") is True


@dataclass(frozen=True, slots=True)
class Voiced:
    """Whether the voice note went out, and what speaking it cost (paid even if it did not)."""

    sent: bool
    use: TokenUse = NOTHING_USED
    message_id: str | None = None  # Meta's id of the voice note sent


class Speaker:
    """Speaks an answer; every step that fails leaves the answer to be sent as text."""

    def __init__(self, *, settings: Settings, gemini: Gemini, metrics: Metrics) -> None:
        self._settings = settings
        self._gemini = gemini
        self._metrics = metrics

    async def send(self, job: Job, answer: str, reply_to: str | None) -> Voiced:
        """Voiced.sent once the voice note was sent; else send the text (the reason is logged
        and counted). Meta's refusal of the 24-hour window is raised: text would fail too."""
        spoken = speakable(answer)
        if not spoken or too_long_to_speak(spoken):
            return Voiced(self._fallback(job, "too_long" if spoken else "nothing_to_say"))
        try:
            speech = await self._gemini.speak(
                spoken, model=self._settings.gemini_tts_model, voice=self._settings.gemini_tts_voice
            )
        except LLMError as exc:
            return Voiced(self._fallback(job, "tts", exc.reason), exc.use)
        self._metrics.gemini_tokens.labels(job.business.name, "tts").inc(
            speech.prompt_tokens + speech.output_tokens
        )
        message_id = await self._send_speech(job, speech, reply_to)
        return Voiced(message_id is not None, speech.use, message_id or None)

    async def _send_speech(self, job: Job, speech: Speech, reply_to: str | None) -> str | None:
        """Meta's id of the voice note sent, or None when the text is to go instead."""
        try:
            note = await to_voice_note_async(speech.audio, speech.mime_type)
        except VoiceError as exc:
            self._fallback(job, "conversion", exc.reason)
            return None
        try:
            media_id = await job.graph.upload_media(note, VOICE_NOTE_MIME, "answer.ogg")
        except GraphAPIError as exc:
            self._fallback(job, "upload", str(exc))
            return None
        try:
            message_id = await job.graph.send_audio(job.row.recipient, media_id, reply_to=reply_to)
        except GraphAPIError as exc:
            if exc.code == GRAPH_OUTSIDE_WINDOW:
                raise
            self._fallback(job, "send", str(exc))
            return None
        self._metrics.voice_replies.labels(job.business.name).inc()
        log.info(
            "voice note sent for message %s (%d bytes)",
            short_hash(job.row.message_id),
            len(note),
            extra=job.log_fields("voice"),
        )
        return message_id  # "" if Meta gave no id: sent all the same

    def _fallback(self, job: Job, reason: str, detail: str = "") -> bool:
        self._metrics.voice_fallbacks.labels(job.business.name, reason).inc()
        log.warning(
            "voice note for message %s not sent (%s%s); the text goes instead",
            short_hash(job.row.message_id),
            reason,
            f": {detail}" if detail else "",
            extra=job.log_fields("voice"),
        )
        return False
