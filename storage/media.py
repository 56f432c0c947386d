"""Media of the console's transcript: what a customer's file is (Meta's media id, its type and
name), and the assistant's own voice answers, whose Ogg/Opus bytes exist only here."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, Float, String, bindparam, select, update

from domain.types import Role
from storage.database import Database
from storage.schema import inbox, media
from webhook.events import clean_text

log = logging.getLogger(__name__)

# A voice answer's Ogg at most: WhatsApp's voice note limit, which voice/audio.py keeps to.
MAX_KEPT_BYTES = 512 * 1024
GONE, TOO_LARGE = "gone", "too_large"  # why Meta will not give a customer's file (any more)


@dataclass(frozen=True, slots=True)
class MediaNote:
    """What the webhook said of a customer's media message, kept with its transcript line."""

    kind: str  # audio, image, video, document, sticker
    media_id: str
    mime_type: str
    sha256: str
    filename: str | None
    voice: bool


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A transcript line's media as kept: the console addresses it by `token`."""

    token: str
    conversation_key: str
    phone_number_id: str
    inbox_id: int | None
    role: str
    kind: str
    media_id: str | None
    mime_type: str
    sha256: str
    filename: str | None
    voice: bool
    kept: bool  # the bytes are here (a voice answer), not at Meta
    unavailable: str | None  # GONE or TOO_LARGE once Meta would not give it
    created_at: float


def new_token() -> str:
    """An address for one file: 144 random bits, so no one finds another's by counting."""
    return secrets.token_urlsafe(18)


_COLUMNS = (
    media.c.token,
    media.c.conversation_key,
    media.c.phone_number_id,
    media.c.inbox_id,
    media.c.role,
    media.c.kind,
    media.c.media_id,
    media.c.mime_type,
    media.c.sha256,
    media.c.filename,
    media.c.voice,
    (media.c.data.is_not(None)).label("kept"),
    media.c.unavailable,
    media.c.created_at,
)

# A customer's media, with the closed message's turns: only while the claim is still ours.
INBOUND_COLUMNS = [
    "inbox_id",
    "conversation_key",
    "phone_number_id",
    "token",
    "role",
    "kind",
    "media_id",
    "mime_type",
    "sha256",
    "filename",
    "voice",
    "created_at",
]
INBOUND_FROM_CLAIM = select(
    inbox.c.id,
    inbox.c.conversation_key,
    inbox.c.phone_number_id,
    bindparam("token", type_=String),
    bindparam("media_role", type_=String),
    bindparam("kind", type_=String),
    bindparam("media_id", type_=String),
    bindparam("mime_type", type_=String),
    bindparam("sha256", type_=String),
    bindparam("filename", type_=String),
    bindparam("voice", type_=Boolean),
    bindparam("created_at", type_=Float),
).where(inbox.c.id == bindparam("row_id"), inbox.c.owner == bindparam("me"))


def inbound_parameters(note: MediaNote, row_id: int, owner: str, now: float) -> dict[str, object]:
    """The parameters of the inbox's statement that keeps `note` (INBOUND_FROM_CLAIM): text as
    every database takes it (a NUL or a lone surrogate in a file name would fail the close)."""
    return {
        "row_id": row_id,
        "me": owner,
        "token": new_token(),
        "media_role": Role.USER.value,
        "kind": note.kind[:16],
        "media_id": clean_text(note.media_id)[:255],
        "mime_type": clean_text(note.mime_type)[:128],
        "sha256": clean_text(note.sha256)[:128] or None,
        "filename": clean_text(note.filename)[:255] if note.filename else None,
        "voice": note.voice,
        "created_at": now,
    }


def _stored(row: object) -> StoredMedia:
    values = {name: getattr(row, name) for name in StoredMedia.__slots__}
    values["kept"] = bool(values["kept"])
    values["voice"] = bool(values["voice"])
    values["sha256"] = values["sha256"] or ""
    return StoredMedia(**values)


class Media:
    """The media rows: written when a message closes or a voice answer goes out, read by the
    console, deleted with their conversation's turns (purge, /forget)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._keep_answer = db.insert(media).on_conflict_do_nothing(
            index_elements=["inbox_id", "role"]
        )

    async def keep_voice_answer(
        self, *, conversation_key: str, phone_number_id: str, inbox_id: int, data: bytes
    ) -> bool:
        """Keep the Ogg/Opus of the voice note that answered message `inbox_id`; False when it
        is over MAX_KEPT_BYTES (not kept) or already was."""
        if not data or len(data) > MAX_KEPT_BYTES:
            return False
        values = {
            "token": new_token(),
            "conversation_key": conversation_key,
            "phone_number_id": phone_number_id,
            "inbox_id": inbox_id,
            "role": Role.MODEL.value,
            "kind": "audio",
            "mime_type": "audio/ogg",
            "voice": True,
            "size": len(data),
            "data": data,
            "created_at": time.time(),
        }
        async with self._db.write() as conn:
            result = await conn.execute(self._keep_answer.values(values))
            return result.rowcount == 1

    async def of_lines(
        self, conversation_key: str, inbox_ids: Sequence[int]
    ) -> dict[tuple[int, str], StoredMedia]:
        """The media of a transcript's lines, by (inbox id, role)."""
        if not inbox_ids:
            return {}
        query = select(*_COLUMNS).where(
            media.c.conversation_key == conversation_key,
            media.c.inbox_id.in_(sorted(set(inbox_ids))),
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = [_stored(row) for row in rows]
        return {(m.inbox_id, m.role): m for m in found if m.inbox_id is not None}

    async def find(self, token: str) -> StoredMedia | None:
        """One file's row (without its bytes), by the address the console gave it."""
        if not token or len(token) > 64:
            return None
        async with self._db.connect() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(media.c.token == token))).first()
        return _stored(row) if row is not None else None

    async def data(self, token: str) -> bytes | None:
        """The bytes kept here for a file (a voice answer's), or None."""
        async with self._db.connect() as conn:
            data = await conn.scalar(select(media.c.data).where(media.c.token == token))
        return bytes(data) if data is not None else None

    async def mark_unavailable(self, token: str, reason: str) -> None:
        """Meta will not give this file (GONE, TOO_LARGE): the transcript says so from now on."""
        async with self._db.write() as conn:
            await conn.execute(
                update(media).where(media.c.token == token).values(unavailable=reason[:16])
            )
