"""GET /webhook over ASGI: Meta's verification handshake answered, anything else refused."""

from __future__ import annotations

import pytest
from helpers import VERIFY_TOKEN, Harness

# --- GET /webhook: the verification handshake ------------------------------------------


async def test_verify_handshake_echoes_challenge_as_plain_text(harness: Harness) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    response = await harness.client.get("/webhook", params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN + "x", "hub.challenge": "1"},
        {},
    ],
    ids=["bad-token", "bad-mode", "no-mode", "no-token", "empty-token", "longer-token", "none"],
)
async def test_verify_handshake_refuses_anything_else(
    harness: Harness, params: dict[str, str]
) -> None:
    response = await harness.client.get("/webhook", params=params)
    assert response.status_code == 403
    assert response.text != "1"
