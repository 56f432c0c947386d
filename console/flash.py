"""One-time messages after a POST ("Sent.", a refusal's reason), carried to the next page in a
short-lived cookie signed with the session's token, so no other site or session can plant one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from fastapi import Request, Response

FLASH_COOKIE = "console_flash"
FLASH_SECONDS = 60
KINDS = frozenset({"ok", "sent", "error"})
MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class Flash:
    kind: str  # ok, sent (a reply went out), error
    text: str


def _signature(token: str, payload: str) -> str:
    return hmac.new(token.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]


def put(request: Request, response: Response, token: str | None, kind: str, text: str) -> None:
    """Attach a message for the next page this session shows."""
    if not token or kind not in KINDS:
        return
    raw = json.dumps([kind, text[:MAX_TEXT]], ensure_ascii=False).encode()  # "não": 4 bytes
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{_signature(token, payload)}",
        max_age=FLASH_SECONDS,
        path="/console",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def read(request: Request, token: str | None) -> Flash | None:
    """The message waiting for this session, if its signature holds."""
    value = request.cookies.get(FLASH_COOKIE)
    if not value or not token or "." not in value:
        return None
    payload, signature = value.rsplit(".", 1)
    if not hmac.compare_digest(signature, _signature(token, payload)):
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    if kind not in KINDS or not isinstance(text, str):
        return None
    return Flash(kind, text)


def clear(request: Request, response: Response) -> None:
    response.delete_cookie(
        FLASH_COOKIE,
        path="/console",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
