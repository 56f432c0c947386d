"""Meta's OpenAPI description of the Cloud API as the tests' check on what the service POSTs to
`/{version}/{phone number id}/messages` (meta_openapi.py, the vendored file in
tests/schemas/meta/): the copy is Meta's, Meta's own examples of what the service sends pass,
the service's shapes at their limits pass, wrong shapes fail with a readable reason, and both
fakes of Graph refuse a wrong shape and fail the test."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import httpx
import pytest
from delivery_support import template_entry
from fake_upstreams import FakeServer
from helpers import MESSAGES_URL
from meta_openapi import (
    READ_RECEIPT_EXAMPLE,
    SPEC,
    GraphRequestRejected,
    check_graph_message,
    problems,
    request_examples,
    spec,
)
from respx_upstreams import FakeUpstreams

from actions.choices import BODY_CHARS, Choices, interactive
from domain.templates import template_of

VENDORED = SPEC.parent
USER = "16505551234"
# The kinds of request the service makes, by the title of Meta's example of each
SERVICE_KINDS = (
    "Send Text Message",
    "Send Reply to Text Message",
    "Send Audio Message by ID",
    "Send Reply to Audio Message by ID",
    "Send Reply Button",
    "Send List Message",
    "Send Message Template Text",
    READ_RECEIPT_EXAMPLE,
)


def message(kind: str, content: dict[str, Any], reply_to: str | None = None) -> dict[str, Any]:
    """A message as whatsapp.py's GraphClient builds it."""
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": USER,
        "type": kind,
        kind: content,
    }
    return {**body, "context": {"message_id": reply_to}} if reply_to else body


# ---------------------------------------------------------------------------------------------
# The vendored copy


def test_the_vendored_description_is_metas_file_unmodified_with_its_licence() -> None:
    data = SPEC.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    readme = (VENDORED / "README.md").read_text(encoding="utf-8")
    assert f"`{blob}`" in readme  # the git blob id of facebook/openapi's file, as recorded
    assert "ecba623b4aba6ae770185b074ed77ed5acef22f7" in readme
    licence = (VENDORED / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License")
    assert "Copyright (c) Meta Platforms, Inc. and affiliates." in licence
    assert spec()["openapi"].startswith("3.")


@pytest.mark.parametrize("title", SERVICE_KINDS)
def test_metas_own_examples_of_what_the_service_sends_pass(title: str) -> None:
    check_graph_message(request_examples()[title])


def test_metas_template_examples_mostly_leave_out_the_language_policy_its_schema_requires() -> None:
    """Why the check drops `language.policy` from the required (meta_openapi.relaxed): Meta's
    schema requires it, but most of Meta's template examples on the endpoint send `{"code"}`
    alone, as the contract does."""
    published = spec()["components"]["schemas"]["LanguageObject"]
    assert "policy" in published["required"]
    languages = [
        sorted(e["template"]["language"])
        for e in request_examples().values()
        if e.get("type") == "template"
    ]
    assert languages.count(["code"]) == 8 and languages.count(["code", "policy"]) == 1


# ---------------------------------------------------------------------------------------------
# The service's shapes at their limits


def test_reply_buttons_at_their_limits_pass() -> None:
    options = ("A" * 20, "B" * 20, "C" * 20)  # 3 buttons of 20 characters
    buttons = interactive(Choices("x" * BODY_CHARS, options), "en")
    assert buttons is not None and buttons["type"] == "button"
    assert len(buttons["body"]["text"]) == 1024
    check_graph_message(message("interactive", buttons, reply_to="wamid.in-1"))


@pytest.mark.parametrize("language", ["en", "pt-BR", "es"])
def test_a_list_at_its_limits_passes_in_every_language(language: str) -> None:
    options = tuple(f"{index:02d}" + "r" * 22 for index in range(10))  # 10 rows of 24
    rows = interactive(Choices("Pick one", options), language)
    assert rows is not None and rows["type"] == "list"
    assert len(rows["action"]["sections"][0]["rows"]) == 10
    check_graph_message(message("interactive", rows))


def test_templates_with_positional_named_and_no_parameters_pass() -> None:
    positional = template_of(template_entry("order", "Olá {{1}}, pedido {{2}}"))
    named = template_of(template_entry("welcome", "Hi {{first_name}}!", named=True))
    bare = template_of(template_entry("hello", "Hello!", language="en"))
    assert positional and named and bare
    for template, values in ((positional, ["Ana", "4471"]), (named, ["Bia"]), (bare, [])):
        content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        if components := template.components(values):
            content["components"] = components
        check_graph_message(message("template", content))


# ---------------------------------------------------------------------------------------------
# Wrong shapes, and what the check says about them

TEXT = message("text", {"body": "Hi", "preview_url": False})
BUTTON = {"type": "reply", "reply": {"id": "choice-1", "title": "Small"}}
BUTTONS = message(
    "interactive",
    {"type": "button", "body": {"text": "Which size?"}, "action": {"buttons": [BUTTON]}},
)
READ = copy.deepcopy(request_examples()[READ_RECEIPT_EXAMPLE])
LIST = message(
    "interactive",
    {
        "type": "list",
        "body": {"text": "When?"},
        "action": {"button": "See options", "sections": [{"rows": [{"id": "1", "title": "Sat"}]}]},
    },
)
TEMPLATE = message(
    "template",
    {
        "name": "order_update",
        "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
    },
)
TITLE_21, ROW_25, LIST_BUTTON_21 = "T" * 21, "R" * 25, "B" * 21


def edited(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the value at a dotted path (list indexes as numbers) replaced, or
    removed when `value` is `...`."""
    result = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return result


WRONG = [
    (edited(TEXT, "text.body", 5), "text.body: 5 is not of type 'string'"),
    (edited(TEXT, "text.preview", True), "text: Additional properties are not allowed ('preview'"),
    (edited(TEXT, "to", ...), "(the body): 'to' is a required property"),
    (edited(TEXT, "type", "sms"), "type: 'sms' is none of the kinds Meta lists: text,"),
    (edited(TEXT, "colour", "red"), "('colour' was unexpected)"),
    (edited(TEXT, "recipient_type", "everyone"), "recipient_type: 'everyone' is not one of"),
    (
        message("audio", {"id": "1", "link": "https://x.test/a.ogg"}),
        "audio: matches more than one of the alternatives of a oneOf (id, link)",
    ),
    (message("audio", {"voice": True}), "audio: 'id' is a required property"),
    (
        edited(BUTTONS, "interactive.action.buttons.0.reply.title", TITLE_21),
        f"interactive.action.buttons[0].reply.title: '{TITLE_21}' is too long",
    ),
    (
        edited(BUTTONS, "interactive.action.buttons", [BUTTON] * 4),
        "interactive.action.buttons: a list of 4 items is too long",
    ),
    (
        edited(BUTTONS, "interactive.body.text", "x" * 1025),
        f"interactive.body.text: '{'x' * 40}'… (1025 characters) is too long",
    ),
    (edited(BUTTONS, "interactive.type", "carousel"), "interactive.type: 'carousel' is not one"),
    (
        edited(LIST, "interactive.action.sections.0.rows.0.title", ROW_25),
        f"interactive.action.sections[0].rows[0].title: '{ROW_25}' is too long",
    ),
    (
        edited(LIST, "interactive.action.button", LIST_BUTTON_21),
        f"interactive.action.button: '{LIST_BUTTON_21}' is too long",
    ),
    (
        edited(LIST, "interactive.action.sections.0.rows", [{"id": "1", "title": "x"}] * 11),
        "interactive.action.sections[0].rows: a list of 11 items is too long",
    ),
    (
        edited(TEMPLATE, "template.components.0.parameters.0.text", ...),
        "template.components[0].parameters[0]: 'text' is a required property",
    ),
    (
        edited(TEMPLATE, "template.components.0.type", "footer"),
        "template.components[0].type: 'footer' is not one of ['header', 'body', 'button']",
    ),
    (edited(TEMPLATE, "template.name", ...), "template: 'name' is a required property"),
    (edited(READ, "typing_indicator", ...), "'typing_indicator' is a required property"),
    (edited(READ, "status", "delivered"), "status: 'read' was expected"),
    (
        edited(READ, "typing_indicator", {"type": "audio"}),
        "typing_indicator: {'type': 'text'} was expected",
    ),
    (edited(READ, "message_id", 7), "message_id: 7 is not of type 'string'"),
    ([TEXT], "(the body): a list of 1 items is not of type 'object'"),
]


@pytest.mark.parametrize(("body", "expected"), WRONG)
def test_a_wrong_shape_is_refused_saying_where_and_why(body: Any, expected: str) -> None:
    found = problems(body)
    assert any(expected in problem for problem in found), found
    with pytest.raises(GraphRequestRejected) as refused:
        check_graph_message(body)
    text = str(refused.value)
    assert text.startswith(("A ", "An ")) and "does not match Meta's OpenAPI description" in text
    assert "tests/schemas/meta/business-messaging-api_v23.0.yaml" in text
    assert expected in text and json.dumps(body, indent=2, sort_keys=True) in text


# ---------------------------------------------------------------------------------------------
# The fakes of Graph refuse a wrong shape as Graph would, and the test then fails


async def test_the_respx_fake_answers_a_wrong_shape_400_and_keeps_why(
    fakes: FakeUpstreams,
) -> None:
    bad = edited(TEXT, "text.body", 5)
    async with httpx.AsyncClient() as client:
        ok = await client.post(MESSAGES_URL, json=TEXT)
        refused = await client.post(MESSAGES_URL, json=bad)
    assert ok.status_code == 200
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException"
    assert "text.body: 5 is not of type 'string'" in error["error_data"]["details"]
    assert fakes.graph_calls == [(TEXT, 200), (bad, 400)]
    [why] = fakes.rejected
    assert "A text message POSTed" in why and "text.body: 5 is not of type 'string'" in why
    fakes.rejected.clear()  # the fixture would fail this test at teardown otherwise


def test_the_local_fake_server_answers_a_wrong_shape_400_and_fails_when_it_stops() -> None:
    bad = edited(READ, "typing_indicator", ...)
    stopping = pytest.raises(GraphRequestRejected, match="'typing_indicator' is a required")
    with stopping, FakeServer() as fake:
        url = f"{fake.url}/v25.0/106540352242922/messages"
        assert httpx.post(url, json=READ).status_code == 200
        refused = httpx.post(url, json=bad)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == 100
        assert fake.recorded.read == [READ]
