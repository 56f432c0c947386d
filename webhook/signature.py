"""Meta's webhook signature: the HMAC-SHA256 of the raw body under the app secret."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"


def sign(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Check Meta's HMAC-SHA256 of the raw bytes as received, in constant time."""
    if not header:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().lower().encode())
