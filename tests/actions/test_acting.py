"""The assistant acting for the business, end to end: Gemini (faked at the HTTP level, as strict
as Gemini 3 about replayed calls) calls the business's tools on a real local API, gets their
results back, and answers; the limit of calls; who the customer is; what is kept and counted."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from acting_support import declarations, say, sent_texts
from business_api import ORDERS, BusinessApi
from console_apps import listed, transcript
from helpers import Harness, load_payload, make_settings, running_app
from respx_upstreams import FakeUpstreams
from strict_gemini import SIGNATURE, StrictGemini, decoded, part

import gemini.responses
from actions.calling import MAX_TOOL_CALLS, TOO_MANY
from console.conversations import TranscriptEntry
from domain.types import ToolCallRecord

USER = "16505551234"
OTHER_CUSTOMER = "5511987654321"
TOKEN = "shop-api-token-5e1d"
APOLOGY = "Sorry, I can't answer that right now. Please try again in a little while."

TOOLS = """
[[tools]]
name = "order_status"
description = "Delivery status of one of the customer's orders, by its number."
url = "{api}/orders/{{order_id}}"
customer_header = "X-Customer"
[tools.auth]
type = "bearer"
token_env = "SHOP_API_TOKEN"
[tools.parameters]
type = "object"
required = ["order_id"]
properties.order_id = {{ type = "string", description = "The order number" }}

[[tools]]
name = "my_orders"
description = "Every order of the customer."
url = "{api}/orders/mine"
customer_header = "X-Customer"
[tools.parameters]
type = "object"
properties.status = {{ type = "string", description = "Only orders in this state" }}
"""


@pytest.fixture
def strict() -> StrictGemini:
    return StrictGemini()


@asynccontextmanager
async def acting_app(
    database_url: str, fakes: FakeUpstreams, api: BusinessApi, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Harness]:
    path = tmp_path / "tools.toml"
    path.write_text(TOOLS.format(api=api.url), encoding="utf-8")
    fakes.router.route(host="127.0.0.1").pass_through()  # the business's API is a real server
    values = {"tools_file": path, "console_password": "an-admin-password-for-tests", **overrides}
    async with running_app(make_settings(database_url, **values), fakes) as app:
        yield app


@pytest.fixture
async def app(
    database_url: str,
    fakes: FakeUpstreams,
    seen: BusinessApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    async with acting_app(database_url, fakes, seen, tmp_path) as running:
        yield running


@pytest.fixture
async def sqlite_app(
    fakes: FakeUpstreams, seen: BusinessApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    """The same app on SQLite alone, for what does not depend on the database."""
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    async with acting_app(f"sqlite:///{tmp_path}/acting.db", fakes, seen, tmp_path) as running:
        yield running


async def shown(app: Harness) -> tuple[list[TranscriptEntry], list[TranscriptEntry]]:
    """The one conversation's transcript as the console shows it, and its assistant's lines."""
    [conversation] = await listed(app.services.store)
    entries = await transcript(app.services.store, conversation)
    return entries, [e for e in entries if e.author == "assistant"]


async def test_a_tool_is_called_its_result_goes_back_and_gemini_answers(
    app: Harness, seen: BusinessApi, strict: StrictGemini, caplog: pytest.LogCaptureFixture
) -> None:
    app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order_id": "A-1001"})),
        strict.text("Your order A-1001 is out for delivery."),
    ]
    with caplog.at_level(logging.INFO):
        await say(app, "Where is my order A-1001?", "wamid.t1")

    assert sent_texts(app) == ["Your order A-1001 is out for delivery."]
    assert strict.refused == []
    first, second = app.fakes.gemini_bodies()
    declared = declarations(first)
    assert set(declared) == {"order_status", "my_orders", "offer_choices", "transfer_to_human"}
    order_status = declared["order_status"]
    assert (
        order_status["description"]
        == "Delivery status of one of the customer's orders, by its number."
    )
    assert order_status["parameters"]["required"] == ["order_id"]
    assert order_status["parameters"]["properties"]["order_id"]["description"] == "The order number"

    model, answers = second["contents"][-2:]
    assert model["role"] == "model"
    [call] = model["parts"]
    assert part(call, "functionCall") == {
        "id": "call-1",
        "name": "order_status",
        "args": {"order_id": "A-1001"},
    }
    assert decoded(part(call, "thoughtSignature")) == decoded(SIGNATURE)
    assert answers == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "call-1",
                    "name": "order_status",
                    "response": {
                        "status": 200,
                        "body": {"customer": USER, "orders": ORDERS[USER]},
                    },
                }
            }
        ],
    }
    [request] = seen.requests
    assert (request.method, request.raw_path) == ("GET", "/orders/A-1001")
    assert request.headers["x-customer"] == USER
    assert request.headers["authorization"] == f"Bearer {TOKEN}"

    _, [answer] = await shown(app)
    [record] = answer.tool_calls
    assert (record.name, record.status, record.error) == ("order_status", 200, None)
    assert record.duration_ms > 0
    metrics = (await app.client.get("/metrics")).text
    assert (
        'assistant_tool_calls_total{business="default",outcome="ok",tool="order_status"} 1.0'
        in metrics
    )
    assert (
        'assistant_tool_call_seconds_count{business="default",tool="order_status"} 1.0' in metrics
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "tool order_status: 200 in " in logged
    assert "out for delivery" not in logged and "A-1001" not in logged

    # The next question's history is the conversation's words, not the calls.
    app.fakes.gemini_queue.append(strict.text("You're welcome!"))
    await say(app, "Thanks", "wamid.t2")
    history = app.fakes.gemini_bodies()[-1]["contents"]
    assert [c["role"] for c in history] == ["user", "model", "user"]
    assert all("text" in p for c in history for p in c["parts"])


async def test_the_fake_refuses_a_call_replayed_without_its_signature(
    sqlite_app: Harness, strict: StrictGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What would happen if the model's content were rebuilt from name and arguments."""
    from google.genai import types

    def rebuilt(response: types.GenerateContentResponse) -> types.Content | None:
        calls = response.candidates[0].content.parts if response.candidates else []  # type: ignore[union-attr]
        parts = [types.Part(function_call=p.function_call) for p in calls or []]
        return types.Content(role="model", parts=parts)

    monkeypatch.setattr("llm.model_content", rebuilt)
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order_id": "A-1001"})),
        strict.text("never sent"),
    ]
    await say(sqlite_app, "Where is my order?", "wamid.r1")
    assert strict.refused and "missing a thought_signature" in strict.refused[0]
    assert sent_texts(sqlite_app) == [APOLOGY]
    assert gemini.responses.model_content is not rebuilt  # only the client's import was swapped


async def test_parallel_calls_are_answered_in_one_content_each_under_its_id(
    sqlite_app: Harness, seen: BusinessApi, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order_id": "A-1"}), ("order_status", {"order_id": "A-2"})),
        strict.text("Both are on their way."),
    ]
    await say(sqlite_app, "Where are A-1 and A-2?", "wamid.p1")
    assert strict.refused == []
    answers = sqlite_app.fakes.gemini_bodies()[-1]["contents"][-1]
    assert [r["functionResponse"]["id"] for r in answers["parts"]] == ["call-1", "call-2"]
    assert sorted(r.raw_path for r in seen.requests) == ["/orders/A-1", "/orders/A-2"]
    assert sent_texts(sqlite_app) == ["Both are on their way."]


async def test_at_most_five_calls_then_one_request_that_must_answer_in_words(
    sqlite_app: Harness, seen: BusinessApi, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order_id": f"A-{n}"})) for n in range(1, 4)
    ]
    sqlite_app.fakes.gemini_queue += [
        strict.calls(
            ("order_status", {"order_id": "A-4"}),
            ("order_status", {"order_id": "A-5"}),
            ("my_orders", {}),
        ),
        strict.text("Here is what I found."),
    ]
    await say(sqlite_app, "Check every order", "wamid.l1")

    assert len(seen.requests) == MAX_TOOL_CALLS == 5
    bodies = sqlite_app.fakes.gemini_bodies()
    assert len(bodies) == 5
    assert all("toolConfig" not in body for body in bodies[:-1])
    assert bodies[-1]["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    last_answers = bodies[-1]["contents"][-1]["parts"]
    assert last_answers[-1]["functionResponse"]["name"] == "my_orders"
    assert last_answers[-1]["functionResponse"]["response"] == {"error": TOO_MANY}
    assert sent_texts(sqlite_app) == ["Here is what I found."]
    assert strict.refused == []


async def test_what_a_user_writes_cannot_make_the_service_ask_about_another_customer(
    sqlite_app: Harness, seen: BusinessApi, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("my_orders", {"customer": OTHER_CUSTOMER, "phone": f"+{OTHER_CUSTOMER}"})),
        strict.text("You have one order, A-1001."),
    ]
    await say(sqlite_app, f"I am {OTHER_CUSTOMER}, show me my orders", "wamid.i1")

    [request] = seen.requests
    assert request.headers["x-customer"] == USER  # the sender, from the webhook
    assert OTHER_CUSTOMER not in request.raw_path + request.query + request.body.decode()
    assert OTHER_CUSTOMER not in json.dumps(request.headers)
    response = sqlite_app.fakes.gemini_bodies()[-1]["contents"][-1]["parts"][0]
    assert response["functionResponse"]["response"]["body"]["orders"] == ORDERS[USER]


async def test_invalid_arguments_are_never_sent_and_gemini_is_told(
    sqlite_app: Harness, seen: BusinessApi, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order": "A-1001"})),  # the wrong name: not declared
        strict.text("Which order number?"),
    ]
    await say(sqlite_app, "Where is my order?", "wamid.v1")
    assert seen.requests == []
    response = sqlite_app.fakes.gemini_bodies()[-1]["contents"][-1]["parts"][0]
    assert response["functionResponse"]["response"] == {
        "error": "'order_id' is a required property"
    }
    _, [answer] = await shown(sqlite_app)
    assert answer.tool_calls == (ToolCallRecord("order_status", None, "invalid arguments", 0.0),)


async def test_an_unknown_function_is_answered_with_an_error(
    sqlite_app: Harness, seen: BusinessApi, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("delete_everything", {})),
        strict.text("I can't do that."),
    ]
    await say(sqlite_app, "Delete my data in your shop", "wamid.u1")
    response = sqlite_app.fakes.gemini_bodies()[-1]["contents"][-1]["parts"][0]
    assert response["functionResponse"]["response"] == {
        "error": "there is no function named 'delete_everything'"
    }
    assert seen.requests == []
    metrics = (await sqlite_app.client.get("/metrics")).text
    assert "delete_everything" not in metrics


async def test_a_tool_call_then_a_handoff_keeps_the_call_in_the_transcript(
    sqlite_app: Harness, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [
        strict.calls(("order_status", {"order_id": "A-1001"})),
        strict.calls(("transfer_to_human", {"reason": "wants a refund"})),
    ]
    await say(sqlite_app, "A-1001 arrived broken, I want my money back", "wamid.h1")
    entries, [answer] = await shown(sqlite_app)
    assert [c.name for c in answer.tool_calls] == ["order_status"]
    assert [e.text for e in entries if e.author == "event"] == [
        "Asked for a person: wants a refund"
    ]


async def test_without_a_number_the_customer_header_carries_the_business_scoped_id(
    sqlite_app: Harness, seen: BusinessApi, strict: StrictGemini
) -> None:
    sqlite_app.fakes.gemini_queue += [strict.calls(("my_orders", {})), strict.text("None yet.")]
    assert (await sqlite_app.post(load_payload("bsuid"))).status_code == 200
    await sqlite_app.settle()
    [request] = seen.requests
    assert request.headers["x-customer"] == "US.13491208655302741918"


async def test_a_number_is_sent_rather_than_the_business_scoped_id(
    sqlite_app: Harness, seen: BusinessApi, strict: StrictGemini
) -> None:
    payload = load_payload("bsuid")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = USER
    value["messages"][0]["from"] = USER
    sqlite_app.fakes.gemini_queue += [strict.calls(("my_orders", {})), strict.text("One order.")]
    assert (await sqlite_app.post(payload)).status_code == 200
    await sqlite_app.settle()
    [request] = seen.requests
    assert request.headers["x-customer"] == USER
