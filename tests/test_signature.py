"""Webhook signatures (webhook/signature.py): Meta's known answer, verified over the raw bytes."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from stored_payloads import load_payload

from webhook.signature import sign, verify_signature

# ---------------------------------------------------------------------------------------------
# Signatures


def test_sign_known_answer() -> None:
    body, secret = b'{"a":1}', "s"
    independent = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Computed once with `printf '{"a":1}' | openssl dgst -sha256 -hmac s`.
    known = "37beaf650f70b40ec9706929c2e9d835cbd63729988f48781e6383a147215f07"
    assert independent == known
    assert sign(body, secret) == "sha256=" + known
    assert verify_signature(body, "sha256=" + known, secret)


BODY = json.dumps(load_payload("text")).encode()
SECRET = "app-secret-1"
GOOD = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("body", "header", "secret", "ok"),
    [
        pytest.param(BODY, GOOD, SECRET, True, id="valid"),
        pytest.param(BODY, "  " + GOOD + " ", SECRET, True, id="surrounding-space"),
        pytest.param(BODY, "sha256=" + GOOD[7:].upper(), SECRET, True, id="uppercase-hex"),
        pytest.param(BODY, GOOD, "other-secret", False, id="wrong-secret"),
        pytest.param(BODY + b" ", GOOD, SECRET, False, id="tampered-body"),
        pytest.param(BODY.replace(b"color", b"colour"), GOOD, SECRET, False, id="edited-body"),
        pytest.param(BODY, None, SECRET, False, id="missing-header"),
        pytest.param(BODY, "", SECRET, False, id="empty-header"),
        pytest.param(BODY, GOOD[7:], SECRET, False, id="no-prefix"),
        pytest.param(
            BODY,
            "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
            SECRET,
            False,
            id="sha1-prefix",
        ),
        pytest.param(BODY, "sha1=" + GOOD[7:], SECRET, False, id="sha1-prefix-sha256-hex"),
        pytest.param(BODY, GOOD[:-1], SECRET, False, id="truncated-digest"),
    ],
)
def test_verify_signature(body: bytes, header: str | None, secret: str, ok: bool) -> None:
    assert verify_signature(body, header, secret) is ok


def test_signature_is_over_raw_escaped_unicode_bytes() -> None:
    raw = b'{"text":{"body":"caf\\u00e9"}}'  # as Meta sends it: ASCII with \u escapes
    header = "sha256=" + hmac.new(b"k", raw, hashlib.sha256).hexdigest()
    assert verify_signature(raw, header, "k")
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert reserialised != raw
    assert not verify_signature(reserialised, header, "k")
