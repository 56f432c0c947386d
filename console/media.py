"""The transcript's media in the console: each file as the page shows it (a player, an image, a
link, or why it is missing), and its bytes served behind the session, never Meta's address."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request, Response

from answering.media import MediaRef, MediaRefused, fetch, normalise_mime, size_limit
from console import words
from console.web import PREFIX, Console, OperatorDep, Refusal, console_of, not_found
from ops.logs import short_hash
from storage.media import GONE, TOO_LARGE, StoredMedia
from storage.operators import Operator
from webhook.events import Kind

log = logging.getLogger("console")

# Meta keeps a customer's media for about 30 days after it was sent; older ids are not tried.
META_KEEPS_SECONDS = 30 * 86400
# The browser may keep a file for its own session a little while: the live transcript is
# redrawn every few seconds, and each redraw would otherwise fetch it from Meta again.
CACHE_CONTROL = "private, max-age=600"
# Types the browser is given as they are: played or shown in the page. Anything else is a
# download of type application/octet-stream, so nothing a customer sent runs on this origin.
INLINE_TYPES = frozenset(
    {
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/aac",
        "audio/amr",
        "image/jpeg",
        "image/png",
        "image/webp",
        "video/mp4",
        "video/3gpp",
    }
)
DOWNLOAD_TYPES = frozenset({"application/pdf", "text/plain"})
OTHER_TYPE = "application/octet-stream"
MAX_FILENAME_CHARS = 100
_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt", "image/jpeg": ".jpg"}
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9._ -]")


@dataclass(frozen=True, slots=True)
class MediaView:
    """A transcript line's file as the page shows it (console/templates/_media.html)."""

    kind: str  # voice, audio, image, video, document, sticker
    url: str  # the console's own address for it
    filename: str | None
    missing: str | None  # GONE or TOO_LARGE: the page says so instead of showing it


def media_view(stored: StoredMedia | None, now: float) -> MediaView | None:
    """The file of a line, or None; a customer's file older than Meta keeps it is missing."""
    if stored is None:
        return None
    kind = "voice" if stored.voice else stored.kind
    url = f"{PREFIX}/media/{stored.token}"
    return MediaView(kind, url, stored.filename, missing(stored, now))


def missing(stored: StoredMedia, now: float) -> str | None:
    """Why a file cannot be had: Meta said so before, or it is older than Meta keeps media."""
    if (
        stored.unavailable is None
        and not stored.kept
        and now - stored.created_at > META_KEEPS_SECONDS
    ):
        return GONE
    return stored.unavailable


def served_type(mime_type: str) -> str:
    """The Content-Type a file is served with: its own when on the allow-lists, else bytes."""
    bare = normalise_mime(mime_type)
    return bare if bare in INLINE_TYPES or bare in DOWNLOAD_TYPES else OTHER_TYPE


def safe_filename(filename: str | None, content_type: str) -> str:
    """A download's name: the customer's without folders or control characters, shortened;
    `document` (with the type's extension) when nothing is left."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    name = name[-MAX_FILENAME_CHARS:] if name else ""
    return name or "document" + _EXTENSIONS.get(content_type, "")


def disposition(kind: str, content_type: str, filename: str | None) -> str:
    """`inline` for what the page plays or shows; documents and other types as attachments,
    named safely (an ASCII name, and the UTF-8 one as RFC 6266 says)."""
    if content_type in INLINE_TYPES and kind != Kind.DOCUMENT.value:
        return "inline"
    name = safe_filename(filename, content_type)
    plain = _UNSAFE_ASCII.sub("_", name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


class RangeNotSatisfiable(Exception):
    """A `Range` that starts past the file's end: 416, with the file's size."""


ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range a `Range` header asks for, first and last byte included, within `size`;
    None for the whole file: no header, several ranges, or one this does not read (RFC 9110
    lets a server answer those with the whole file). Safari plays audio only from a server
    that answers ranges."""
    found = ONE_RANGE.fullmatch(header.strip()) if header else None
    if found is None or found.group(1) == found.group(2) == "":
        return None
    first, last = found.group(1), found.group(2)
    if first == "":  # the last `last` bytes
        if int(last) == 0:
            raise RangeNotSatisfiable
        return max(size - int(last), 0), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, size - 1 if last == "" else min(int(last), size - 1)


def partial(data: bytes, header: str | None, content_type: str) -> Response:
    """`data`, whole (200) or the range the request asked for (206), or 416."""
    try:
        wanted = requested_range(header, len(data))
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
    if wanted is None:
        response = Response(data, media_type=content_type)
    else:
        first, last = wanted
        response = Response(data[first : last + 1], status_code=206, media_type=content_type)
        response.headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    response.headers["Accept-Ranges"] = "bytes"
    return response


def may_see(console: Console, operator: Operator, phone_number_id: str) -> bool:
    """Whether the operator serves the business a file was sent to (the admin: every one)."""
    if operator.scope is None:
        return True
    business = console.settings.businesses.get(phone_number_id)
    return business is not None and business.name in operator.scope


async def media_file(request: Request, operator: OperatorDep, token: str) -> Response:
    """A transcript's file, through the console: the voice answer kept here, or the
    customer's file fetched from Meta by its media id (never Meta's address)."""
    console = console_of(request)
    stored = await console.store.media.find(token)
    if stored is None or not may_see(console, operator, stored.phone_number_id):
        raise not_found()
    data, mime_type = await _bytes(console, stored, console.clock())
    content_type = served_type(mime_type)
    response = partial(data, request.headers.get("range"), content_type)
    response.headers["Content-Disposition"] = disposition(
        stored.kind, content_type, stored.filename
    )
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


async def _bytes(console: Console, stored: StoredMedia, now: float) -> tuple[bytes, str]:
    if stored.kept:
        data = await console.store.media.data(stored.token)
        if data is None:
            raise not_found()
        return data, stored.mime_type
    why = missing(stored, now)
    if why is not None:
        raise Refusal(404, words.MEDIA_TOO_LARGE if why == TOO_LARGE else words.MEDIA_GONE)
    graph = console.desk.graphs.get(stored.phone_number_id)
    if graph is None or not stored.media_id:
        raise not_found()  # the business is no longer served here
    kind = Kind.of(stored.kind)
    ref = MediaRef(kind, stored.media_id, stored.mime_type, stored.sha256, None, None, stored.voice)
    try:
        attachment = await fetch(graph, ref, size_limit(console.settings, kind))
    except MediaRefused as refused:
        log.info("media %s not served: %s", short_hash(stored.token), refused.reason)
        if refused.transient:
            raise Refusal(502, words.MEDIA_NOT_NOW) from refused
        too_large = refused.reason == "too_large"
        await console.store.media.mark_unavailable(stored.token, TOO_LARGE if too_large else GONE)
        raise Refusal(404, words.MEDIA_TOO_LARGE if too_large else words.MEDIA_GONE) from refused
    return attachment.data, attachment.mime_type or stored.mime_type
