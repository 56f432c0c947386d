"""What each kind of inbound message means: a question for Gemini, a fixed reply, or nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from answering.media import MEDIA_KINDS, MediaRef, MediaRefused, is_readable, media_ref
from language.replies import Reply
from webhook.events import Kind

# Silent kinds are recorded and logged only: a reaction or a system notice needs no answer.
SILENT = frozenset({Kind.REACTION, Kind.SYSTEM})

_MEDIA_NAMES = {
    Kind.IMAGE: "a photo",
    Kind.VIDEO: "a video",
    Kind.DOCUMENT: "a document",
    Kind.AUDIO: "an audio message",
}


@dataclass(frozen=True, slots=True)
class Question:
    """Something to ask Gemini: the text, maybe a media file, and how history will remember it."""

    text: str
    remembered_as: str
    media: MediaRef | None = None


@dataclass(frozen=True, slots=True)
class FixedReply:
    """A reply that needs no Gemini call, in the user's language when sent; None means the
    message is only recorded."""

    reply: Reply | None
    fields: Mapping[str, str] = field(default_factory=dict)


def interpret(
    kind: Kind, text: str | None, raw: Mapping[str, Any], max_chars: int
) -> Question | FixedReply:
    """Decide, from the message alone, what answering it takes."""
    if kind in SILENT:
        return FixedReply(None)
    if kind in (Kind.TEXT, Kind.INTERACTIVE, Kind.BUTTON) and text:
        return Question(cut(text, max_chars), text)
    if kind in MEDIA_KINDS:
        return _media_question(kind, raw, max_chars)
    if kind is Kind.STICKER:
        return FixedReply(Reply.STICKER)
    described = describe(kind, raw)
    if described:
        return Question(described, described)
    return FixedReply(Reply.UNSUPPORTED)


def cut(text: str, max_chars: int) -> str:
    """Long texts are cut, and Gemini is told so, rather than paid for in full."""
    if len(text) <= max_chars:
        return text
    return (
        text[:max_chars]
        + f"\n\n[Note: the message was cut here; it was {len(text)} characters long.]"
    )


def _media_question(kind: Kind, raw: Mapping[str, Any], max_chars: int) -> Question | FixedReply:
    ref = media_ref(kind, dict(raw))
    if ref is None:
        return FixedReply(Reply.UNSUPPORTED)
    if not is_readable(ref):
        return FixedReply(Reply.DOCUMENT_DECLINED if kind is Kind.DOCUMENT else Reply.TYPE_DECLINED)
    what = "a voice note" if ref.voice else _MEDIA_NAMES[kind]
    if ref.filename:
        what += f" named {ref.filename!r}"
    caption = cut(ref.caption, max_chars) if ref.caption else None
    if caption:
        prompt = f"[The user sent {what} with this message:]\n{caption}"
    elif ref.voice or kind is Kind.AUDIO:
        prompt = f"[The user sent {what}. Listen to it and answer what they say or ask.]"
    else:
        prompt = f"[The user sent {what} without a message. Answer what it seems to ask for.]"
    remembered = f"[{what}]" + (f" {ref.caption}" if ref.caption else "")
    return Question(prompt, remembered, ref)


def refusal(refused: MediaRefused) -> FixedReply:
    """What the user is told when their media cannot be read."""
    if refused.reason == "too_large":
        return FixedReply(Reply.TOO_LARGE, {"limit": f"{refused.limit / 1024 / 1024:.0f} MB"})
    return FixedReply(Reply.UNAVAILABLE)


def describe(kind: Kind, raw: Mapping[str, Any]) -> str | None:
    """A location, shared contacts or an order, written out as text for Gemini and history."""
    body = raw.get(kind.value)
    if kind is Kind.LOCATION and isinstance(body, dict):
        place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        where = f"{body.get('latitude')}, {body.get('longitude')}"
        return f"[The user shared a location: {place + ' ' if place else ''}({where})]"
    if kind is Kind.CONTACTS and isinstance(body, list) and body:
        return "[The user shared contacts: " + "; ".join(map(_contact, body)) + "]"
    if kind is Kind.ORDER and isinstance(body, dict):
        items = [i for i in _list(body.get("product_items")) if isinstance(i, dict)]
        lines = [
            f"{i.get('quantity', 1)} x {i.get('product_retailer_id', 'item')}"
            f" at {i.get('item_price', '?')} {i.get('currency', '')}".rstrip()
            for i in items
        ]
        note = f" Note: {body['text']}" if body.get("text") else ""
        return "[The user sent an order: " + "; ".join(lines) + "." + note + "]"
    return None


def _contact(contact: Any) -> str:
    """`Name (+1 555 0100)` for one shared contact card."""
    card = contact if isinstance(contact, dict) else {}
    name = card.get("name")
    formatted = name.get("formatted_name") if isinstance(name, dict) else None
    phones = [
        str(p["phone"]) for p in _list(card.get("phones")) if isinstance(p, dict) and p.get("phone")
    ]
    return f"{formatted or 'a contact'}" + (f" ({', '.join(phones)})" if phones else "")


def _list(value: Any) -> list[Any]:
    """A list field of a payload, or nothing when it is not a list (fuzzing sends anything)."""
    return value if isinstance(value, list) else []
