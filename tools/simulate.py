"""Send one signed, Meta-shaped text webhook to a running instance (make simulate TEXT=...)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from dotenv import dotenv_values

from whatsapp import SIGNATURE_HEADER, sign

DEFAULT_URL = "http://127.0.0.1:8000/webhook"
DEFAULT_WA_ID = "15550000001"
REQUIRED = ("APP_SECRET", "PHONE_NUMBER_ID")


def build_payload(
    text: str,
    *,
    phone_number_id: str,
    wa_id: str = DEFAULT_WA_ID,
    message_id: str | None = None,
    timestamp: int | None = None,
    profile_name: str = "Playground User",
) -> dict[str, Any]:
    """The documented inbound text webhook: one entry, one change, one message."""
    message = {
        "from": wa_id,
        "id": message_id or f"wamid.simulated-{uuid.uuid4().hex}",
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "type": "text",
        "text": {"body": text},
    }
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
    """APP_SECRET and PHONE_NUMBER_ID from the environment, else from `.env`; missing: empty."""
    file_values = dotenv_values(env_file) if os.path.exists(env_file) else {}
    return {name: environ.get(name) or file_values.get(name) or "" for name in REQUIRED}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", required=True, help="the message the fake user sends")
    parser.add_argument("--from", dest="wa_id", default=DEFAULT_WA_ID, help="sender's wa_id")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"webhook URL (default {DEFAULT_URL})")
    args = parser.parse_args(argv)
    if not args.text.strip():
        parser.error('--text is empty (make simulate TEXT="Hello")')
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, post one signed webhook, print the HTTP status; 0 on a 2xx."""
    args = parse_args(argv)
    values = read_settings(os.environ)
    missing = [name for name, value in values.items() if not value]
    if missing:
        print(f"simulate: set {' and '.join(missing)} (environment or .env)", file=sys.stderr)
        return 1
    payload = build_payload(args.text, phone_number_id=values["PHONE_NUMBER_ID"], wa_id=args.wa_id)
    body = encode(payload)
    try:
        response = httpx.post(
            args.url, content=body, headers=signed_headers(body, values["APP_SECRET"]), timeout=10
        )
    except httpx.TransportError as exc:
        print(f"simulate: cannot reach {args.url} ({type(exc).__name__}); is it running?")
        return 1
    print(f"{response.status_code} {response.reason_phrase}: {response.text[:200]}")
    return 0 if response.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
