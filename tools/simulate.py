"""Send one signed, Meta-shaped webhook to a running instance (make simulate TEXT=...).

The message is a text by default; --type sticker, image or voice (make simulate TYPE=...) sends
that kind of media message instead, with a made-up media id. Against a real Meta number that id
is not Meta's, so the service answers that it could not open the file: expected, it shows the
path a media message takes (fetched from Meta before Gemini sees it). A sticker is never fetched
and gets its friendly reply. The answer itself: the service's log says what became of it, the
operator console (/console) shows it once sent, and `make chat` needs no Meta at all.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from dotenv import dotenv_values

from domain.businesses import tenant_entries
from webhook.signature import SIGNATURE_HEADER, sign

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = "8000"
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/webhook"
DEFAULT_WA_ID = "15550000001"
# --type: the kinds of message this tool can send (a voice note is Meta's type `audio`).
KINDS = ("text", "sticker", "image", "voice")
# What `make run HOST=...` may listen on that is no address to post to: this machine instead.
_ANY_ADDRESS = ("0.0.0.0", "::", "[::]")  # noqa: S104 (never bound here)


def default_url(environ: Mapping[str, str]) -> str:
    """http://$HOST:$PORT/webhook, as `make run` listens (127.0.0.1 and 8000 when unset).

    ValueError for a PORT that is not a number.
    """
    host = environ.get("HOST", "").strip() or DEFAULT_HOST
    port = environ.get("PORT", "").strip() or DEFAULT_PORT
    if not port.isdigit():
        raise ValueError(f"PORT must be a number, not {port!r}")
    if host in _ANY_ADDRESS:
        host = DEFAULT_HOST
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}/webhook"


def made_up_media_id() -> str:
    """Sixteen digits, like Meta's media ids; no media of Meta's has it."""
    return str(10**15 + uuid.uuid4().int % (9 * 10**15))


def media_object(kind: str, media_id: str, caption: str = "") -> tuple[str, dict[str, Any]]:
    """Meta's message type and media object for a sticker, an image or a voice note."""
    sha256 = base64.b64encode(hashlib.sha256(media_id.encode()).digest()).decode()
    if kind == "sticker":
        sticker = {"id": media_id, "mime_type": "image/webp", "sha256": sha256, "animated": False}
        return "sticker", sticker
    if kind == "image":
        image: dict[str, Any] = {"id": media_id, "mime_type": "image/jpeg", "sha256": sha256}
        if caption:
            image["caption"] = caption
        return "image", image
    if kind == "voice":
        mime_type = "audio/ogg; codecs=opus"
        return "audio", {"id": media_id, "mime_type": mime_type, "sha256": sha256, "voice": True}
    raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")


def build_payload(
    text: str = "",
    *,
    phone_number_id: str,
    kind: str = "text",
    wa_id: str = DEFAULT_WA_ID,
    message_id: str | None = None,
    timestamp: int | None = None,
    profile_name: str = "Playground User",
    media_id: str | None = None,
) -> dict[str, Any]:
    """The documented inbound webhook: one entry, one change, one message of `kind` (KINDS).

    `text` is a text's body, or an image's caption; a media message gets `media_id`, else a
    made-up one.
    """
    message: dict[str, Any] = {
        "from": wa_id,
        "id": message_id or f"wamid.simulated-{uuid.uuid4().hex}",
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
    }
    if kind == "text":
        message.update(type="text", text={"body": text})
    else:
        meta_type, media = media_object(kind, media_id or made_up_media_id(), caption=text)
        message.update({"type": meta_type, meta_type: media})
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": profile_name}, "wa_id": wa_id}],
        "messages": [message],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}],
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    """The body bytes, escaped like Meta's (non-ASCII as \\uXXXX); sign exactly these."""
    return json.dumps(payload, separators=(",", ":")).encode()


def signed_headers(body: bytes, app_secret: str) -> dict[str, str]:
    """The headers Meta sends with a webhook POST, including the HMAC signature of `body`."""
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, app_secret)}


def read_settings(environ: Mapping[str, str], env_file: str = ".env") -> dict[str, str]:
    """APP_SECRET, PHONE_NUMBER_ID and TENANTS_FILE from the environment, else from `.env`."""
    file_values = dotenv_values(env_file) if os.path.exists(env_file) else {}
    names = ("APP_SECRET", "PHONE_NUMBER_ID", "TENANTS_FILE")
    return {name: environ.get(name) or file_values.get(name) or "" for name in names}


def phone_number_id_of(values: Mapping[str, str], tenant: str) -> str:
    """The number id to write to: the named business of TENANTS_FILE, else PHONE_NUMBER_ID
    (else the file's first business). ValueError says what to set."""
    if not tenant and values["PHONE_NUMBER_ID"]:
        return values["PHONE_NUMBER_ID"]
    if not values["TENANTS_FILE"]:
        raise ValueError("set PHONE_NUMBER_ID, or TENANTS_FILE to choose a business")
    entries = tenant_entries(Path(values["TENANTS_FILE"]))
    chosen = [e for e in entries if isinstance(e, dict) and (not tenant or e.get("name") == tenant)]
    if not chosen:
        names = ", ".join(str(e.get("name")) for e in entries if isinstance(e, dict))
        raise ValueError(f"no business named {tenant!r} in TENANTS_FILE (there are: {names})")
    return str(chosen[0].get("phone_number_id", ""))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--type",
        dest="kind",
        choices=KINDS,
        default="text",
        help="the kind of message (default text; a voice note is Meta's type audio)",
    )
    parser.add_argument(
        "--text",
        default="",
        help="the message the fake user sends (required for --type text), or an image's caption",
    )
    parser.add_argument("--from", dest="wa_id", default=DEFAULT_WA_ID, help="sender's wa_id")
    parser.add_argument(
        "--url",
        help="webhook URL (default http://$HOST:$PORT/webhook, like `make run`: "
        f"{DEFAULT_URL} when HOST and PORT are unset)",
    )
    parser.add_argument(
        "--tenant",
        default=os.environ.get("TENANT", ""),
        help="the business of TENANTS_FILE to write to, by name (default: $TENANT)",
    )
    args = parser.parse_args(argv)
    if args.kind == "text" and not args.text.strip():
        parser.error('--text is empty: a text message needs one (make simulate TEXT="Hello")')
    if args.kind in ("sticker", "voice") and args.text.strip():
        parser.error(f"--text goes with --type text or image (a caption); a {args.kind} has none")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, post one signed webhook, print the HTTP status; 0 on a 2xx."""
    args = parse_args(argv)
    values = read_settings(os.environ)
    if not values["APP_SECRET"]:
        print("simulate: set APP_SECRET (environment or .env)", file=sys.stderr)
        return 1
    try:
        phone_number_id = phone_number_id_of(values, args.tenant)
    except ValueError as exc:
        print(f"simulate: {exc} (environment or .env)", file=sys.stderr)
        return 1
    try:
        url = args.url or default_url(os.environ)
    except ValueError as exc:
        print(f"simulate: {exc} (or give --url)", file=sys.stderr)
        return 1
    payload = build_payload(
        args.text, phone_number_id=phone_number_id, kind=args.kind, wa_id=args.wa_id
    )
    body = encode(payload)
    try:
        response = httpx.post(
            url, content=body, headers=signed_headers(body, values["APP_SECRET"]), timeout=10
        )
    except httpx.TransportError as exc:
        print(f"simulate: cannot reach {url} ({type(exc).__name__}); is it running?")
        return 1
    print(f"{response.status_code} {response.reason_phrase}: {response.text[:200]}")
    if response.is_success:
        print(_what_next(args.kind, args.wa_id))
    return 0 if response.is_success else 1


def _what_next(kind: str, wa_id: str) -> str:
    """Where to see the answer, and what a made-up media id gets."""
    lines = [
        (
            f"The answer goes to {wa_id} through the Graph API: the service's log says what "
            "became of it (never its text); the operator console (/console, with "
            "CONSOLE_PASSWORD set) shows it once sent."
        )
    ]
    if wa_id == DEFAULT_WA_ID:
        lines.append(
            f"{wa_id} is made up, so Meta delivers nothing: --from <a phone on your test "
            "number's recipient list> gets the answer on that phone; `make chat` needs no Meta."
        )
    if kind in ("image", "voice"):
        lines.append(
            'The media id is made up too: against a real Meta number the answer is "Sorry, '
            "I couldn't open that file\" (expected: it shows the path a media message takes)."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
