"""The WhatsApp side: webhook signature, typed inbound events and the Graph API client."""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from domain.types import Backoff
from ops.pools import ShardedTransport

log = logging.getLogger(__name__)
T = TypeVar("T")

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_ID_CHARS = 255  # Meta's ids are far shorter; longer ones are not Meta's and are dropped


def sign(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Check Meta's HMAC-SHA256 of the raw bytes as received, in constant time."""
    if not header:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().lower().encode())


# ---------------------------------------------------------------------------------------------
# Inbound events


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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def clean_text(value: str) -> str:
    """Text as every database takes it: lone surrogates replaced, NUL characters dropped."""
    if value.isascii() and "\x00" not in value:
        return value
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _str(value: Any) -> str:
    if isinstance(value, str):
        return clean_text(value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def _int(value: Any) -> int:
    """A 64-bit integer, or 0 for anything else (JSON allows 1e999 and 2**64)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if -(2**63) <= number < 2**63 else 0


def _errors(value: Any) -> tuple[ErrorInfo, ...]:
    return tuple(
        ErrorInfo(code=_int(e.get("code")) or None, title=_str(e.get("title") or e.get("message")))
        for e in map(_dict, _list(value))
    )


def _text_of(kind: Kind, message: dict[str, Any]) -> str | None:
    """The words the user typed, chose or captioned, for the kinds that carry any."""
    body: Any = None
    if kind is Kind.TEXT:
        body = _dict(message.get("text")).get("body")
    elif kind in (Kind.IMAGE, Kind.VIDEO, Kind.DOCUMENT):
        body = _dict(message.get(kind.value)).get("caption")
    elif kind is Kind.INTERACTIVE:
        interactive = _dict(message.get("interactive"))
        reply = _dict(interactive.get("button_reply") or interactive.get("list_reply"))
        body = reply.get("title")
    elif kind is Kind.BUTTON:
        body = _dict(message.get("button")).get("text")
    body = clean_text(body) if isinstance(body, str) else None
    return body if isinstance(body, str) and body else None


def _find_contact(contacts: list[Any], sender: str, sender_user_id: str) -> dict[str, Any]:
    """The contact entry describing this sender; a lone contact is the sender."""
    entries = [_dict(c) for c in contacts]
    for contact in entries:
        if (sender and contact.get("wa_id") == sender) or (
            sender_user_id and contact.get("user_id") == sender_user_id
        ):
            return contact
    return entries[0] if len(entries) == 1 else {}


def _parse_message(
    message: dict[str, Any], phone_number_id: str, contacts: list[Any]
) -> InboundMessage | None:
    message_id = _str(message.get("id"))
    if not message_id or len(message_id) > MAX_ID_CHARS:
        return None
    sender, sender_user_id = _str(message.get("from")), _str(message.get("from_user_id"))
    contact = _find_contact(contacts, sender, sender_user_id)
    wa_id = sender or _str(contact.get("wa_id"))
    user_id = sender_user_id or _str(contact.get("user_id")) or None
    if not (wa_id or user_id) or max(len(wa_id), len(user_id or "")) > MAX_ID_CHARS:
        return None
    raw_type = _str(message.get("type"))
    kind = Kind.of(raw_type)
    return InboundMessage(
        id=message_id,
        kind=kind,
        phone_number_id=phone_number_id,
        wa_id=wa_id,
        user_id=user_id,
        profile_name=_str(_dict(contact.get("profile")).get("name")) or None,
        timestamp=_int(message.get("timestamp")),
        text=_text_of(kind, message),
        reply_to=_str(_dict(message.get("context")).get("id")) or None,
        raw_type=raw_type,
        raw=message,
    )


def _parse_status(status: dict[str, Any], phone_number_id: str) -> StatusUpdate:
    return StatusUpdate(
        id=_str(status.get("id")),
        status=_str(status.get("status")) or "unknown",
        phone_number_id=phone_number_id,
        timestamp=_int(status.get("timestamp")),
        errors=_errors(status.get("errors")),
    )


def parse_webhook(payload: Any) -> WebhookEvents:
    """Walk every entry, change, message and status; ignore what is not understood."""
    events = WebhookEvents()
    for entry in map(_dict, _list(_dict(payload).get("entry"))):
        for change in map(_dict, _list(entry.get("changes"))):
            value = _dict(change.get("value"))
            if change.get("field") != "messages":
                continue
            phone_number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
            contacts = _list(value.get("contacts"))
            for raw in map(_dict, _list(value.get("messages"))):
                message = _parse_message(raw, phone_number_id, contacts)
                if message is not None:
                    events.messages.append(message)
            events.statuses.extend(
                _parse_status(s, phone_number_id) for s in map(_dict, _list(value.get("statuses")))
            )
            events.errors.extend(_errors(value.get("errors")))
    return events


# ---------------------------------------------------------------------------------------------
# Graph API client

# Meta error codes worth another try: throttling, pair rate, unknown and "service unavailable".
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 133004})


GRAPH_BACKOFF = Backoff(attempts=4)


class GraphAPIError(Exception):
    """A failed Graph API call: Meta's error code where it gave one, and whether to retry."""

    def __init__(
        self, message: str, *, status: int | None, code: int | None, transient: bool
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.transient = transient

    @classmethod
    def from_response(cls, response: httpx.Response) -> GraphAPIError:
        try:
            error = _dict(_dict(response.json()).get("error"))
        except ValueError:
            error = {}
        code = _int(error.get("code")) or None
        transient = (
            response.status_code >= 500 or response.status_code == 429 or code in TRANSIENT_CODES
        )
        message = _str(error.get("type")) or response.reason_phrase or "error"
        return cls(message, status=response.status_code, code=code, transient=transient)

    def __str__(self) -> str:
        return f"Graph API {self.args[0]} (status {self.status}, code {self.code})"


class MediaTooLarge(Exception):
    """A media download went past its size limit and was stopped."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"media larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class MediaInfo:
    id: str
    url: str
    mime_type: str
    sha256: str
    file_size: int


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, GraphAPIError) and exc.transient


class GraphClient:
    """One business number's Graph endpoints, all through `_request`, over a shared client.

    The `httpx.AsyncClient` carries the base URL, the timeouts and the connection pools, and
    is shared by every business; each GraphClient adds its business's bearer token to its own
    requests. The lifespan owns the shared client.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        version: str,
        phone_number_id: str,
        token: SecretStr,
        backoff: Backoff = GRAPH_BACKOFF,
        observer: Callable[[str, float, int | str | None], None] | None = None,
    ) -> None:
        self._http = http
        self._auth = {"Authorization": f"Bearer {token.get_secret_value()}"}
        self._observer = observer
        self._messages_path = f"/{version}/{phone_number_id}/messages"
        self._version = version
        self._backoff = backoff

    async def send_text(self, to: str, body: str, *, reply_to: str | None = None) -> str:
        """Send one text message (at most 4096 characters); returns Meta's message id."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"body": body, "preview_url": False},
        }
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        data = await self._request("POST", self._messages_path, "send_text", json=payload)
        return _str(_dict(next(iter(_list(data.get("messages"))), {})).get("id"))

    async def mark_read(self, message_id: str) -> None:
        """Blue ticks plus the typing indicator, which Meta clears at the reply or after 25 s."""
        payload = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
            "typing_indicator": {"type": "text"},
        }
        await self._request("POST", self._messages_path, "mark_read", json=payload)

    async def get_media(self, media_id: str) -> MediaInfo:
        """The short-lived download URL and the metadata of an inbound media object."""
        data = await self._request("GET", f"/{self._version}/{media_id}", "get_media")
        return MediaInfo(
            id=_str(data.get("id")) or media_id,
            url=_str(data.get("url")),
            mime_type=_str(data.get("mime_type")),
            sha256=_str(data.get("sha256")),
            file_size=_int(data.get("file_size")),
        )

    async def download_media(self, url: str, *, max_bytes: int | None = None) -> bytes:
        """The bytes behind a `get_media` URL (same bearer header, redirects followed).

        Streams, and raises `MediaTooLarge` as soon as more than `max_bytes` arrive.
        """

        async def once() -> bytes:
            async with self._http.stream(
                "GET", url, headers=self._auth, follow_redirects=True
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise GraphAPIError.from_response(response)
                declared = response.headers.get("content-length", "")
                if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise MediaTooLarge(max_bytes)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise MediaTooLarge(max_bytes)
                    chunks.append(chunk)
                return b"".join(chunks)

        return await self._with_retries("download_media", once)

    async def _request(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._send(method, path, what, **kwargs)
        try:
            return _dict(response.json())
        except ValueError:
            return {}

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        return await self._with_retries(what, lambda: self._send_once(method, url, what, **kwargs))

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """The one choke point: retries transient failures with backoff, raises `GraphAPIError`."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._backoff.attempts),
            wait=wait_exponential_jitter(
                initial=self._backoff.first_delay, max=self._backoff.max_delay
            ),
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        started = time.perf_counter()
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        result = await call()
                    except httpx.TransportError as exc:
                        raise GraphAPIError(
                            type(exc).__name__, status=None, code=None, transient=True
                        ) from exc
            self._observe(what, started, None)
            return result
        except GraphAPIError as exc:
            log.warning(
                "graph %s failed: status=%s code=%s transient=%s",
                what,
                exc.status,
                exc.code,
                exc.transient,
            )
            self._observe(
                what, started, exc.code or (f"http_{exc.status}" if exc.status else "network")
            )
            raise

    def _observe(self, what: str, started: float, error: int | str | None) -> None:
        if self._observer is not None:
            self._observer(what, time.perf_counter() - started, error)

    async def _send_once(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, url, headers=self._auth, **kwargs)
        if response.is_success:
            return response
        error = GraphAPIError.from_response(response)
        log.info("graph %s attempt failed: status=%s code=%s", what, error.status, error.code)
        raise error


def graph_http_client(
    base_url: str,
    timeout_seconds: float,
    *,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The client every business shares for Meta: base URL and explicit timeouts.

    Its connections are spread over small pools (`pools.ShardedTransport`) unless a
    `transport` is given.
    """
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": "whatsapp-gemini-assistant"},
        timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
        transport=transport or ShardedTransport(max_connections),
    )
