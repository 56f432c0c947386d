"""The poison the fuzzer found: one bad message in a batch is answered around.

Part of the fault suite (`make faults`), not of `make test`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams

pytestmark = pytest.mark.fault


# --- Poison the fuzzer found: one bad message in a batch ------------------------------------------

GOOD_SENDER = "15550001111"


def batch_with(poison: dict[str, Any], status_event: dict[str, Any] | None = None) -> bytes:
    """One body with a good message and a poisoned one (or status), as Meta batches them."""
    payload = text_payload("A normal question", message_id="wamid.good", wa_id=GOOD_SENDER)
    value = payload["entry"][0]["changes"][0]["value"]
    if poison:
        first = value["messages"][0]
        value["messages"].append({**first, "id": "wamid.poisoned", "from": "15550002222", **poison})
    if status_event:
        value["statuses"] = [status_event]
    # ensure_ascii, as Meta sends it: lone surrogates go out escaped (\ud83d); and infinity as
    # the valid JSON number 1e999 (json.loads reads it as float infinity).
    return json.dumps(payload).replace("Infinity", "1e999").encode()


INFINITE_CODE_STATUS = {
    "id": "wamid.out-1",
    "status": "failed",
    "timestamp": "1749416383",
    "recipient_id": "16505551234",
    "errors": [{"code": float("inf"), "title": "Message undeliverable"}],
}

POISONS: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    # name: (fields of the poisoned message, a status event). Each of these once made
    # POST /webhook raise (a 500 and Meta redelivering the body for days).
    "lone-surrogate-in-text": ({"text": {"body": "broken emoji \ud83d"}}, None),
    "lone-surrogate-in-id": ({"id": "wamid.\udc00"}, None),
    "timestamp-beyond-int64": ({"timestamp": str(2**64)}, None),
    "timestamp-1e999": ({"timestamp": float("inf")}, None),
    "status-error-code-1e999": ({}, INFINITE_CODE_STATUS),
    "nul-in-text": ({"text": {"body": "nul \x00 inside"}}, None),
    "id-over-255": ({"id": "wamid." + "A" * 300}, None),
    "sender-over-255": ({"from": "1" * 300}, None),
}


@pytest.mark.parametrize("name", list(POISONS))
async def test_known_poison_in_a_batch_is_answered_around(
    database_url: str, fakes: FakeUpstreams, name: str
) -> None:
    """One bad message must not cost its batch-mates their answer (nor Meta a retry loop)."""
    poison, status_event = POISONS[name]
    async with running_app(make_settings(database_url), fakes) as harness:
        response = await harness.post(batch_with(poison, status_event))
        assert response.status_code == 200
        await harness.settle_all()
        replies = [(m["to"], m["text"]["body"]) for m in fakes.sent()]
        assert (GOOD_SENDER, "You said: A normal question") in replies
        assert await harness.services.store.inbox.state_of("wamid.good") == "done"
