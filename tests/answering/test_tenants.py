"""Two businesses on one deployment: routed by number, separate memories, own prompts and tokens."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Harness, conversation, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams

from language.replies import Reply, reply_text

PADARIA, OFICINA = "111111111111111", "222222222222222"
TOKEN_P, TOKEN_O = "tok-padaria-41f2", "tok-oficina-9c3e"
CUSTOMER = "5511987654321"  # one person who is a customer of both
TENANTS = f"""
[[tenants]]
name = "Padaria Central"
phone_number_id = "{PADARIA}"
whatsapp_token_env = "TEST_TOKEN_PADARIA"
system_prompt = "You are the bakery's assistant."

[[tenants]]
name = "Oficina do Zé"
phone_number_id = "{OFICINA}"
whatsapp_token_env = "TEST_TOKEN_OFICINA"
system_prompt = "You are the garage's assistant."
rate_limit_per_minute = 1
"""


def to(business: str, body: str, message_id: str, wa_id: str = CUSTOMER) -> Any:
    """A text webhook to `business`'s number."""
    payload = copy.deepcopy(text_payload(body, message_id=message_id, wa_id=wa_id))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = business
    return payload


@pytest.fixture
async def app(
    database_url: str, fakes: FakeUpstreams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    monkeypatch.setenv("TEST_TOKEN_PADARIA", TOKEN_P)
    monkeypatch.setenv("TEST_TOKEN_OFICINA", TOKEN_O)
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS, encoding="utf-8")
    settings = make_settings(
        database_url, tenants_file=path, phone_number_id=None, whatsapp_token=None
    )
    async with running_app(settings, fakes) as harness:
        yield harness


def system_prompt(body: dict[str, Any]) -> str:
    """The business's own prompt: the first paragraph of the system instruction (the time and
    the business's hours follow it)."""
    return str(body["systemInstruction"]["parts"][0]["text"]).split("\n\n")[0]


def texts_of(body: dict[str, Any]) -> list[str]:
    return [part["text"] for content in body["contents"] for part in content["parts"]]


async def test_one_person_writing_to_two_businesses_has_two_conversations(app: Harness) -> None:
    await app.post(to(PADARIA, "Do you have sourdough?", "wamid.p1"))
    await app.settle()
    await app.post(to(OFICINA, "My brakes squeak", "wamid.o1"))
    await app.settle()
    await app.post(to(PADARIA, "And croissants?", "wamid.p2"))
    await app.settle()

    bodies = app.fakes.gemini_bodies()
    assert [system_prompt(b) for b in bodies] == [
        "You are the bakery's assistant.",
        "You are the garage's assistant.",
        "You are the bakery's assistant.",
    ]
    # The bakery's second question carries the bakery's history only.
    assert texts_of(bodies[2]) == [
        "Do you have sourdough?",
        "You said: Do you have sourdough?",
        "And croissants?",
    ]
    assert texts_of(bodies[1]) == ["My brakes squeak"]
    replies = [(number, token) for number, token in app.fakes.senders]
    # Each business's read receipt and reply go out from its own number with its own token.
    assert replies == [(PADARIA, TOKEN_P)] * 2 + [(OFICINA, TOKEN_O)] * 2 + [(PADARIA, TOKEN_P)] * 2
    assert [m["to"] for m in app.fakes.sent()] == [CUSTOMER] * 3
    store = app.services.store.conversations
    assert len(await store.history(conversation(CUSTOMER, PADARIA), 10, 10_000)) == 4
    assert len(await store.history(conversation(CUSTOMER, OFICINA), 10, 10_000)) == 2


async def test_a_message_for_a_number_no_business_has_is_acknowledged_and_ignored(
    app: Harness,
) -> None:
    response = await app.post(to("333333333333333", "Hello?", "wamid.x1"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "recorded": 0}
    await app.settle()
    assert app.fakes.gemini_calls == [] and app.fakes.graph_calls == []
    assert await app.services.store.inbox.state_of("wamid.x1") is None
    metrics = (await app.client.get("/metrics")).text
    assert "assistant_unknown_number_messages_total 1.0" in metrics


async def test_forget_to_one_business_leaves_the_other_conversation(app: Harness) -> None:
    await app.post(to(PADARIA, "I live at 1 Rua Augusta", "wamid.p1"))
    await app.post(to(OFICINA, "The car is a blue Fiat", "wamid.o1"))
    await app.settle()
    await app.post(to(PADARIA, "/forget", "wamid.p2"))
    await app.settle()

    store = app.services.store.conversations
    assert await store.history(conversation(CUSTOMER, PADARIA), 10, 10_000) == []
    kept = await store.history(conversation(CUSTOMER, OFICINA), 10, 10_000)
    assert [t.text for t in kept] == ["The car is a blue Fiat", "You said: The car is a blue Fiat"]
    assert app.fakes.senders[-1] == (PADARIA, TOKEN_P)  # the confirmation, from the bakery


async def test_rate_limits_are_per_business_with_its_own_limit(app: Harness) -> None:
    await app.post(to(OFICINA, "first", "wamid.o1"))
    await app.settle()
    await app.post(to(OFICINA, "second", "wamid.o2"))  # over the garage's 1 a minute
    await app.settle()
    await app.post(to(PADARIA, "first at the bakery", "wamid.p1"))  # the bakery's 1000
    await app.settle()
    bodies = [m["text"]["body"] for m in app.fakes.sent()]
    assert bodies[0] == "You said: first"
    assert bodies[1] == reply_text(Reply.RATE_LIMITED, "pt-BR")  # a +55 number: Portuguese
    assert bodies[2] == "You said: first at the bakery"
    assert len(app.fakes.gemini_calls) == 2
