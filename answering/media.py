"""Inbound media: which types are read, size limits, download through the Graph API and checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from config.limits import LimitSettings
from ops.logs import short_hash
from storage.media import MediaNote
from webhook.events import Kind
from whatsapp import GraphAPIError, GraphClient, MediaInfo, MediaTooLarge

log = logging.getLogger(__name__)

# What Gemini is given inline, per WhatsApp kind (after the parameters are dropped).
READABLE_TYPES: dict[Kind, frozenset[str]] = {
    Kind.IMAGE: frozenset({"image/jpeg", "image/png", "image/webp"}),
    Kind.AUDIO: frozenset(
        {"audio/ogg", "audio/mpeg", "audio/mp3", "audio/aac", "audio/mp4", "audio/amr"}
    ),
    Kind.VIDEO: frozenset({"video/mp4", "video/3gpp"}),
    Kind.DOCUMENT: frozenset({"application/pdf", "text/plain"}),
}
MEDIA_KINDS = frozenset(READABLE_TYPES)


@dataclass(frozen=True, slots=True)
class Attachment:
    """Media bytes ready to go to Gemini inline."""

    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class MediaRef:
    """What the webhook said about a media message: enough to fetch and check it later."""

    kind: Kind
    media_id: str
    mime_type: str
    sha256: str
    caption: str | None
    filename: str | None
    voice: bool


class MediaRefused(Exception):
    """The media cannot be read: `reason` is one of too_large, unsupported, unavailable, corrupt;
    `transient` when Meta could not be reached or failed (5xx), so asking later may work."""

    def __init__(self, reason: str, limit: int = 0, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit
        self.transient = transient


def normalise_mime(mime_type: str) -> str:
    """`audio/ogg; codecs=opus` → `audio/ogg`: Gemini takes the bare type."""
    return mime_type.split(";", 1)[0].strip().lower()


def media_ref(kind: Kind, message: dict[str, Any]) -> MediaRef | None:
    """The media part of a raw message, or None when it carries no media id."""
    body = message.get(kind.value)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        return None

    def text(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) and value else None

    return MediaRef(
        kind=kind,
        media_id=body["id"],
        mime_type=normalise_mime(text("mime_type") or ""),
        sha256=text("sha256") or "",
        caption=text("caption"),
        filename=text("filename"),
        voice=body.get("voice") is True,
    )


def size_limit(settings: LimitSettings, kind: Kind) -> int:
    """The largest file of this kind downloaded (MAX_IMAGE_BYTES, MAX_AUDIO_BYTES, ...)."""
    return {
        Kind.IMAGE: settings.max_image_bytes,
        Kind.AUDIO: settings.max_audio_bytes,
        Kind.VIDEO: settings.max_video_bytes,
    }.get(kind, settings.max_document_bytes)


def media_note(kind: str, payload: dict[str, Any]) -> MediaNote | None:
    """What the transcript keeps of a customer's media message (None for other kinds)."""
    found = Kind.of(kind)
    if found not in MEDIA_KINDS and found is not Kind.STICKER:
        return None
    ref = media_ref(found, payload)
    if ref is None:
        return None
    return MediaNote(
        ref.kind.value, ref.media_id, ref.mime_type, ref.sha256, ref.filename, ref.voice
    )


def is_readable(ref: MediaRef) -> bool:
    return ref.mime_type in READABLE_TYPES.get(ref.kind, frozenset())


def digest_matches(data: bytes, expected: str) -> bool:
    """Meta gives SHA-256 as hex in some places and base64 in others; accept either."""
    if not expected:
        return True
    digest = hashlib.sha256(data).digest()
    if expected.lower() == digest.hex():
        return True
    try:
        return base64.b64decode(expected, validate=True) == digest
    except (binascii.Error, ValueError):
        return False


async def fetch(graph: GraphClient, ref: MediaRef, max_bytes: int) -> Attachment:
    """Download a media message for Gemini: at most `max_bytes`, checked against Meta's hash.

    The size is checked from the metadata before anything is downloaded. Media URLs last five
    minutes: a 404 on the download gets a fresh URL once.
    """
    info = await _info(graph, ref)
    if info.file_size > max_bytes:
        raise MediaRefused("too_large", max_bytes)
    try:
        data = await _download(graph, info, max_bytes)
    except GraphAPIError as exc:
        if exc.status != 404:
            raise MediaRefused("unavailable", transient=exc.transient) from exc
        info = await _info(graph, ref)  # the URL expired: ask for a fresh one, once
        try:
            data = await _download(graph, info, max_bytes)
        except GraphAPIError as again:
            raise MediaRefused("unavailable", transient=again.transient) from again
    if not digest_matches(data, info.sha256 or ref.sha256):
        log.warning("media %s failed its sha256 check", short_hash(ref.media_id))
        raise MediaRefused("corrupt", transient=True)
    mime_type = normalise_mime(info.mime_type) or ref.mime_type
    return Attachment(data=data, mime_type=mime_type)


async def _download(graph: GraphClient, info: MediaInfo, max_bytes: int) -> bytes:
    try:
        return await graph.download_media(info.url, max_bytes=max_bytes)
    except MediaTooLarge as exc:
        raise MediaRefused("too_large", max_bytes) from exc


async def _info(graph: GraphClient, ref: MediaRef) -> MediaInfo:
    try:
        info = await graph.get_media(ref.media_id)
    except GraphAPIError as exc:
        raise MediaRefused("unavailable", transient=exc.transient) from exc
    if not info.url:
        raise MediaRefused("unavailable")
    return info
