"""Meta's WhatsApp Cloud API: the Graph API client, its errors and its retries."""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from domain.types import Backoff
from ops.sessions import unreachable, upstream_transport
from webhook.events import as_dict, as_int, as_list, as_str

log = logging.getLogger(__name__)
T = TypeVar("T")

# Meta error codes worth another try: throttling, pair rate, unknown and "service unavailable".
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 133004})


GRAPH_BACKOFF = Backoff(attempts=4)
_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")
TEMPLATE_FIELDS = "name,language,status,category,components,parameter_format"
TEMPLATE_PAGES = 20  # 100 templates a page: more than any small business has


class GraphAPIError(Exception):
    """A failed Graph API call: Meta's error code where it gave one, and whether to retry."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        code: int | None,
        transient: bool,
        title: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.transient = transient
        # What Meta said went wrong, for a person: the error's `message` (a send's error has
        # no title), without the "(#131047) " Meta puts before it.
        self.title = title

    @classmethod
    def from_response(cls, response: httpx.Response) -> GraphAPIError:
        try:
            error = as_dict(as_dict(response.json()).get("error"))
        except ValueError:
            error = {}
        code = as_int(error.get("code")) or None
        transient = (
            response.status_code >= 500 or response.status_code == 429 or code in TRANSIENT_CODES
        )
        message = as_str(error.get("type")) or response.reason_phrase or "error"
        title = _CODE_PREFIX.sub("", as_str(error.get("message"))).strip()[:255] or None
        return cls(
            message, status=response.status_code, code=code, transient=transient, title=title
        )

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


@dataclass(frozen=True, slots=True)
class NumberNames:
    """How a business number shows on WhatsApp: the name Meta verified, the number dialled."""

    verified_name: str
    display_phone_number: str


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
        self._auth = httpx.Headers({"Authorization": f"Bearer {token.get_secret_value()}"})
        self._json_headers = httpx.Headers({**self._auth, "Content-Type": "application/json"})
        self._observer = observer
        self._messages_url = under_base_url(http, f"/{version}/{phone_number_id}/messages")
        self._media_url = under_base_url(http, f"/{version}/{phone_number_id}/media")
        self._number_url = under_base_url(http, f"/{version}/{phone_number_id}")
        self._version = version
        self._backoff = backoff

    async def send_text(self, to: str, body: str, *, reply_to: str | None = None) -> str:
        """Send one text message (at most 4096 characters); returns Meta's message id."""
        text = {"body": body, "preview_url": False}
        return await self._send_message(to, "text", text, reply_to, "send_text")

    async def send_audio(self, to: str, media_id: str, *, reply_to: str | None = None) -> str:
        """Send an uploaded Ogg/Opus file as a voice note (a play button, not a file)."""
        audio = {"id": media_id, "voice": True}
        return await self._send_message(to, "audio", audio, reply_to, "send_audio")

    async def send_interactive(
        self, to: str, interactive: dict[str, Any], *, reply_to: str | None = None
    ) -> str:
        """Send reply buttons or a list (`{"type": "button" | "list", "body", "action"}`);
        only inside the 24-hour window. Returns Meta's message id."""
        what = "send_interactive"
        return await self._send_message(to, "interactive", interactive, reply_to, what)

    async def send_template(
        self, to: str, name: str, language: str, components: list[dict[str, Any]]
    ) -> str:
        """Send an approved template (allowed outside the 24-hour window); no `components` when
        it has no parameters. Meta's message id."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return await self._send_message(to, "template", template, None, "send_template")

    async def message_templates(self, waba_id: str) -> list[dict[str, Any]]:
        """The approved templates of a WhatsApp Business Account, every page of them.

        Pages are followed by their `after` cursor, under this client's own base URL, so the
        token never goes where a `paging.next` address might point.
        """
        segment = urllib.parse.quote(waba_id, safe="")
        url = f"/{self._version}/{segment}/message_templates"
        params = {"status": "APPROVED", "fields": TEMPLATE_FIELDS, "limit": "100"}
        entries: list[dict[str, Any]] = []
        for _ in range(TEMPLATE_PAGES):
            page = await self._request("GET", url, "message_templates", params=params)
            entries.extend(as_dict(entry) for entry in as_list(page.get("data")))
            paging = as_dict(page.get("paging"))
            after = as_str(as_dict(paging.get("cursors")).get("after"))
            if not paging.get("next") or not after or after == params.get("after"):
                break
            params = {**params, "after": after}
        return entries

    async def _send_message(
        self, to: str, kind: str, content: dict[str, Any], reply_to: str | None, what: str
    ) -> str:
        """One message of `kind` to `to`, quoting `reply_to` if given; Meta's message id."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": kind,
            kind: content,
        }
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        data = await self._post_json(self._messages_url, what, payload)
        return as_str(as_dict(next(iter(as_list(data.get("messages"))), {})).get("id"))

    async def upload_media(self, data: bytes, mime_type: str, filename: str) -> str:
        """Upload a file to send later (valid 30 days); its media id."""
        form = {"messaging_product": "whatsapp", "type": mime_type}
        files = {"file": (filename, data, mime_type)}
        answer = await self._request(
            "POST", self._media_url, "upload_media", data=form, files=files
        )
        media_id = as_str(answer.get("id"))
        if not media_id:
            raise GraphAPIError("no media id", status=200, code=None, transient=False)
        return media_id

    async def mark_read(self, message_id: str) -> None:
        """Blue ticks plus the typing indicator, which Meta clears at the reply or after 25 s."""
        payload = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
            "typing_indicator": {"type": "text"},
        }
        await self._post_json(self._messages_url, "mark_read", payload)

    async def number_names(self) -> NumberNames:
        """The business number's verified name and display number (either may be "")."""
        data = await self._request(
            "GET",
            self._number_url,
            "number_names",
            params={"fields": "verified_name,display_phone_number"},
        )
        return NumberNames(
            verified_name=as_str(data.get("verified_name")),
            display_phone_number=as_str(data.get("display_phone_number")),
        )

    async def get_media(self, media_id: str) -> MediaInfo:
        """The short-lived download URL and the metadata of an inbound media object."""
        segment = urllib.parse.quote(media_id, safe="")  # one path segment, whatever it holds
        data = await self._request("GET", f"/{self._version}/{segment}", "get_media")
        return MediaInfo(
            id=as_str(data.get("id")) or media_id,
            url=as_str(data.get("url")),
            mime_type=as_str(data.get("mime_type")),
            sha256=as_str(data.get("sha256")),
            file_size=as_int(data.get("file_size")),
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

    async def _post_json(self, url: httpx.URL, what: str, payload: object) -> dict[str, Any]:
        """POST `payload` as JSON, encoded as httpx would (compact, UTF-8) but without its
        per-call URL joining and header merging."""
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return await self._request("POST", url, what, content=content, headers=self._json_headers)

    async def _request(
        self, method: str, url: httpx.URL | str, what: str, **kwargs: Any
    ) -> dict[str, Any]:
        response = await self._send(method, url, what, **kwargs)
        try:
            return as_dict(response.json())
        except ValueError:
            return {}

    async def _send(
        self, method: str, url: httpx.URL | str, what: str, **kwargs: Any
    ) -> httpx.Response:
        return await self._with_retries(what, lambda: self._send_once(method, url, what, **kwargs))

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """The one choke point: retries transient failures with backoff, raises `GraphAPIError`."""
        started = time.perf_counter()
        try:
            try:
                result = await _attempt(call)
            except GraphAPIError as exc:
                if not exc.transient:
                    raise
                result = await self._retried(call, exc)
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
        self._observe(what, started, None)
        return result

    async def _retried(self, call: Callable[[], Awaitable[T]], first: GraphAPIError) -> T:
        """The attempts after a transient failure, with tenacity's backoff.

        The first attempt runs outside tenacity: nearly every call needs no other, and going
        through tenacity costs a tenth of a call's CPU (bench/RESULTS.md, section 5). Here
        tenacity's first attempt replays that failure, so its count and waits are the same as
        if it had made it.
        """
        replay: list[GraphAPIError] = [first]

        async def again() -> T:
            if replay:
                raise replay.pop()
            return await _attempt(call)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._backoff.attempts),
            wait=wait_exponential_jitter(
                initial=self._backoff.first_delay, max=self._backoff.max_delay
            ),
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await again()
        return result

    def _observe(self, what: str, started: float, error: int | str | None) -> None:
        if self._observer is not None:
            self._observer(what, time.perf_counter() - started, error)

    async def _send_once(
        self, method: str, url: httpx.URL | str, what: str, **kwargs: Any
    ) -> httpx.Response:
        kwargs.setdefault("headers", self._auth)
        response = await self._http.request(method, url, **kwargs)
        if response.is_success:
            return response
        error = GraphAPIError.from_response(response)
        log.info("graph %s attempt failed: status=%s code=%s", what, error.status, error.code)
        raise error


async def _attempt(call: Callable[[], Awaitable[T]]) -> T:
    """One try; a failure to reach Meta at all counts as a transient GraphAPIError."""
    try:
        return await call()
    except Exception as exc:
        if not unreachable(exc):
            raise
        raise GraphAPIError(type(exc).__name__, status=None, code=None, transient=True) from exc


def under_base_url(http: httpx.AsyncClient, path: str) -> httpx.URL:
    """`path` under the client's base URL, joined as the client joins a relative URL, once
    rather than on every call."""
    base = http.base_url
    return base.copy_with(raw_path=base.raw_path + path.lstrip("/").encode())


def graph_http_client(
    base_url: str,
    timeout_seconds: float,
    *,
    library: Literal["aiohttp", "httpx"] = "aiohttp",
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The client every business shares for Meta: base URL and explicit timeouts.

    Its requests go over `library` (`sessions.upstream_transport`) unless a `transport` is
    given.
    """
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": "whatsapp-gemini-assistant"},
        timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
        transport=transport or upstream_transport(base_url, max_connections, library),
    )
