"""Send one signed, Meta-shaped text webhook to a running instance (make simulate TEXT=...)."""

from __future__ import annotations

import argparse
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
from whatsapp import SIGNATURE_HEADER, sign

DEFAULT_URL = "http://127.0.0.1:8000/webhook"
DEFAULT_WA_ID = "15550000001"


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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", required=True, help="the message the fake user sends")
    parser.add_argument("--from", dest="wa_id", default=DEFAULT_WA_ID, help="sender's wa_id")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"webhook URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--tenant",
        default=os.environ.get("TENANT", ""),
        help="the business of TENANTS_FILE to write to, by name (default: $TENANT)",
    )
    args = parser.parse_args(argv)
    if not args.text.strip():
        parser.error('--text is empty (make simulate TEXT="Hello")')
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
    payload = build_payload(args.text, phone_number_id=phone_number_id, wa_id=args.wa_id)
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
