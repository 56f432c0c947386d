"""What Meta posts to /webhook, typed: messages, statuses and errors, every one of a batch."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ID_CHARS = 255  # Meta's ids are far shorter; longer ones are not Meta's and are dropped


class Kind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"

    @classmethod
    def of(cls, raw: str) -> Kind:
        try:
            return cls(raw)
        except ValueError:
            return cls.UNSUPPORTED


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a user sent to the business number."""

    id: str
    kind: Kind
    phone_number_id: str
    wa_id: str
    user_id: str | None
    profile_name: str | None
    timestamp: int
    text: str | None
    reply_to: str | None
    raw_type: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def user_key(self) -> str:
        """Conversations are keyed on the business-scoped user id when Meta sends one."""
        return self.user_id or self.wa_id

    @property
    def recipient(self) -> str:
        """Whom to answer: the sender's `wa_id`, or its business-scoped id when that is all."""
        return self.wa_id or self.user_id or ""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: int | None
    title: str


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery status of a message the business sent: logged, never answered."""

    id: str
    status: str
    phone_number_id: str
    timestamp: int
    errors: tuple[ErrorInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookEvents:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    errors: list[ErrorInfo] = field(default_factory=list)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def clean_text(value: str) -> str:
    """Text as every database takes it: lone surrogates replaced, NUL characters dropped."""
    if value.isascii() and "\x00" not in value:
        return value
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def as_str(value: Any) -> str:
    if isinstance(value, str):
        return clean_text(value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def as_int(value: Any) -> int:
    """A 64-bit integer, or 0 for anything else (JSON allows 1e999 and 2**64)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if -(2**63) <= number < 2**63 else 0


def as_error_code(value: Any) -> int | None:
    """Meta's error code, a positive 32-bit integer; None for anything else (a fuzzed 2**40
    is no code Meta sends, and the database keeps codes in a 32-bit column)."""
    number = as_int(value)
    return number if 0 < number < 2**31 else None


def _errors(value: Any) -> tuple[ErrorInfo, ...]:
    return tuple(
        ErrorInfo(
            code=as_error_code(e.get("code")),
            title=as_str(e.get("title") or e.get("message")),
        )
        for e in map(as_dict, as_list(value))
    )


def _text_of(kind: Kind, message: dict[str, Any]) -> str | None:
    """The words the user typed, chose or captioned, for the kinds that carry any."""
    body: Any = None
    if kind is Kind.TEXT:
        body = as_dict(message.get("text")).get("body")
    elif kind in (Kind.IMAGE, Kind.VIDEO, Kind.DOCUMENT):
        body = as_dict(message.get(kind.value)).get("caption")
    elif kind is Kind.INTERACTIVE:
        interactive = as_dict(message.get("interactive"))
        reply = as_dict(interactive.get("button_reply") or interactive.get("list_reply"))
        body = reply.get("title")
    elif kind is Kind.BUTTON:
        body = as_dict(message.get("button")).get("text")
    body = clean_text(body) if isinstance(body, str) else None
    return body if isinstance(body, str) and body else None


def _find_contact(contacts: list[Any], sender: str, sender_user_id: str) -> dict[str, Any]:
    """The contact entry describing this sender; a lone contact is the sender."""
    entries = [as_dict(c) for c in contacts]
    for contact in entries:
        if (sender and contact.get("wa_id") == sender) or (
            sender_user_id and contact.get("user_id") == sender_user_id
        ):
            return contact
    return entries[0] if len(entries) == 1 else {}


def _parse_message(
    message: dict[str, Any], phone_number_id: str, contacts: list[Any]
) -> InboundMessage | None:
    message_id = as_str(message.get("id"))
    if not message_id or len(message_id) > MAX_ID_CHARS:
        return None
    sender, sender_user_id = as_str(message.get("from")), as_str(message.get("from_user_id"))
    contact = _find_contact(contacts, sender, sender_user_id)
    wa_id = sender or as_str(contact.get("wa_id"))
    user_id = sender_user_id or as_str(contact.get("user_id")) or None
    if not (wa_id or user_id) or max(len(wa_id), len(user_id or "")) > MAX_ID_CHARS:
        return None
    raw_type = as_str(message.get("type"))
    kind = Kind.of(raw_type)
    return InboundMessage(
        id=message_id,
        kind=kind,
        phone_number_id=phone_number_id,
        wa_id=wa_id,
        user_id=user_id,
        profile_name=as_str(as_dict(contact.get("profile")).get("name")) or None,
        timestamp=as_int(message.get("timestamp")),
        text=_text_of(kind, message),
        reply_to=as_str(as_dict(message.get("context")).get("id")) or None,
        raw_type=raw_type,
        raw=message,
    )


def _parse_status(status: dict[str, Any], phone_number_id: str) -> StatusUpdate:
    return StatusUpdate(
        id=as_str(status.get("id")),
        status=as_str(status.get("status")) or "unknown",
        phone_number_id=phone_number_id,
        timestamp=as_int(status.get("timestamp")),
        errors=_errors(status.get("errors")),
    )


def parse_webhook(payload: Any) -> WebhookEvents:
    """Walk every entry, change, message and status; ignore what is not understood."""
    events = WebhookEvents()
    for entry in map(as_dict, as_list(as_dict(payload).get("entry"))):
        for change in map(as_dict, as_list(entry.get("changes"))):
            value = as_dict(change.get("value"))
            if change.get("field") != "messages":
                continue
            phone_number_id = as_str(as_dict(value.get("metadata")).get("phone_number_id"))
            contacts = as_list(value.get("contacts"))
            for raw in map(as_dict, as_list(value.get("messages"))):
                message = _parse_message(raw, phone_number_id, contacts)
                if message is not None:
                    events.messages.append(message)
            statuses = map(as_dict, as_list(value.get("statuses")))
            events.statuses.extend(_parse_status(s, phone_number_id) for s in statuses)
            events.errors.extend(_errors(value.get("errors")))
    return events
