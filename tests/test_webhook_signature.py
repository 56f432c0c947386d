"""POST /webhook before anything is parsed: signatures, the body's size limit, signed junk."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import Harness, count_inbox, load_payload, text_payload

from main import MAX_BODY_BYTES
from webhook.signature import sign

# --- POST /webhook: signature, size, junk -------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "sha256=deadbeef", "sha1=abc", "garbage"],
    ids=["missing", "zeros", "short", "sha1", "garbage"],
)
async def test_unsigned_or_mis_signed_post_is_401_and_nothing_happens(
    harness: Harness, signature: str
) -> None:
    response = await harness.post(load_payload("text"), signature=signature)
    assert response.status_code == 401
    await harness.settle()
    assert await count_inbox(harness) == 0
    assert harness.fakes.graph_calls == []
    assert harness.fakes.gemini_calls == []


async def test_post_signed_with_another_secret_is_401(harness: Harness) -> None:
    response = await harness.post(load_payload("text"), secret="not-the-app-secret")
    assert response.status_code == 401
    assert await count_inbox(harness) == 0


async def test_a_non_json_body_is_refused_401_unless_validly_signed(harness: Harness) -> None:
    """The signature is checked before the body is parsed: junk from anyone but Meta is
    refused outright, never acknowledged as "ignored"."""
    for body in (b"not json at all", b"{", b"", b"[" * 5000):
        for signature in ("", "sha256=" + "0" * 64, sign(body, "not-the-app-secret")):
            response = await harness.post(body, signature=signature)
            assert (response.status_code, response.json()) == (
                401,
                {"error": "invalid signature"},
            ), (body[:10], signature)
        assert (await harness.post(body)).status_code == 200  # the same body, signed


async def test_signature_is_checked_over_raw_bytes_as_meta_sends_them(harness: Harness) -> None:
    # Meta escapes non-ASCII characters; re-serialising would change the bytes and the hash.
    body = json.dumps(text_payload("Olá, café?", message_id="wamid.raw-1")).encode()
    assert b"\\u00e1" in body
    response = await harness.post(body)
    assert response.status_code == 200
    await harness.settle()
    assert harness.fakes.gemini_bodies()[0]["contents"][-1]["parts"][0]["text"] == "Olá, café?"


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b"{", b"", b"[" * 200_000, b'"a string"', b"[1, 2, 3]", b"null"],
    ids=["text", "truncated", "empty", "deeply-nested", "string", "list", "null"],
)
async def test_junk_with_valid_signature_is_200_and_ignored(harness: Harness, body: bytes) -> None:
    response = await harness.post(body)
    assert response.status_code == 200
    await harness.settle()
    assert await count_inbox(harness) == 0
    assert harness.fakes.graph_calls == []


async def test_unknown_shapes_with_valid_signature_are_200(harness: Harness) -> None:
    for payload in (
        {"object": "page", "entry": [{"id": "1", "messaging": []}]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"field": "account_update", "value": {"event": "X"}}]}],
        },
        {"object": "whatsapp_business_account", "entry": "not-a-list"},
    ):
        assert (await harness.post(payload)).status_code == 200
    assert await count_inbox(harness) == 0


async def test_body_over_4_mib_is_413_and_not_stored(harness: Harness) -> None:
    payload = text_payload("x" * (MAX_BODY_BYTES + 10), message_id="wamid.huge")
    response = await harness.post(payload)
    assert response.status_code == 413
    assert await count_inbox(harness) == 0


async def test_body_over_limit_without_content_length_is_413(harness: Harness) -> None:
    async def chunks() -> Any:
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    response = await harness.client.post(
        "/webhook", content=chunks(), headers={"X-Hub-Signature-256": "sha256=00"}
    )
    assert response.status_code == 413


async def test_body_just_under_limit_is_accepted(harness: Harness) -> None:
    payload = text_payload("hi", message_id="wamid.big-but-fine")
    payload["padding"] = "y" * (MAX_BODY_BYTES - 1000)
    body = json.dumps(payload).encode()
    assert len(body) <= MAX_BODY_BYTES
    assert (await harness.post(body)).status_code == 200
