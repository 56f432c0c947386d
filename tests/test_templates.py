"""Templates: which of Meta's list the console offers (domain/templates.py), the Graph client's
listing over cursor pages and its sends (whatsapp.py), the list kept 10 minutes
(answering/templates.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from delivery_support import (
    WABA_ID,
    FakeTemplates,
    template_entry,
)
from helpers import GRAPH_BASE, MESSAGES_URL, PHONE_NUMBER_ID, WHATSAPP_TOKEN
from meta_openapi import check_graph_message, check_posted_messages
from pydantic import SecretStr
from respx_upstreams import graph_error

from answering.templates import CACHE_SECONDS, TemplateDesk
from domain.businesses import Business
from domain.templates import Template, template_of, templates_of
from whatsapp import GraphAPIError, GraphClient, graph_http_client

BUSINESS = Business("default", PHONE_NUMBER_ID, SecretStr(WHATSAPP_TOKEN), waba_id=WABA_ID)
ORDER = template_entry("order_update", "Olá {{1}}, seu pedido {{2}} saiu para entrega")
NAMED = template_entry(
    "welcome", "Hi {{first_name}}, your code is {{code}}. Bye {{first_name}}!", named=True
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------------------------
# Which templates are offered, and how one is filled in


def test_a_positional_template_has_numbered_parameters_in_order() -> None:
    template = template_of(template_entry("t", "{{2}} and {{1}} and {{2}} again"))
    assert template == Template(
        "t", "pt_BR", "UTILITY", "{{2}} and {{1}} and {{2}} again", ("1", "2")
    )
    assert template.labels == ("Parameter 1", "Parameter 2")
    assert template.filled(["one", "two"]) == "two and one and two again"
    assert template.components(["one", "two"]) == [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        }
    ]


def test_a_named_template_is_labelled_and_sent_by_its_parameters_names() -> None:
    template = template_of(NAMED)
    assert template is not None and template.named
    assert template.labels == ("first_name", "code")
    assert template.filled(["Ana", "42"]) == "Hi Ana, your code is 42. Bye Ana!"
    assert template.components(["Ana", "42"]) == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                {"type": "text", "parameter_name": "code", "text": "42"},
            ],
        }
    ]


def test_a_template_without_parameters_sends_no_components() -> None:
    template = template_of(template_entry("hello", "Hello! We are open again."))
    assert template is not None
    assert template.labels == () and template.components([]) == []


@pytest.mark.parametrize(
    "entry",
    [
        template_entry("pending", "Hi {{1}}", status="PENDING"),
        template_entry("rejected", "Hi", status="REJECTED"),
        template_entry("otp", "Your code is {{1}}", category="AUTHENTICATION"),
        template_entry("photo", "Hi", more=[{"type": "HEADER", "format": "IMAGE"}]),
        template_entry(
            "greeting", "Hi", more=[{"type": "HEADER", "format": "TEXT", "text": "{{1}}"}]
        ),
        template_entry(
            "track",
            "Hi",
            more=[{"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.test/{{1}}"}]}],
        ),
        template_entry(
            "coupon", "Hi", more=[{"type": "BUTTONS", "buttons": [{"type": "COPY_CODE"}]}]
        ),
        {"name": "broken", "status": "APPROVED"},
        "not an entry",
    ],
)
def test_templates_that_need_more_than_body_parameters_are_not_offered(entry: object) -> None:
    assert template_of(entry) is None


def test_a_text_header_footer_and_quick_replies_do_not_stop_a_template() -> None:
    more: list[dict[str, Any]] = [
        {"type": "HEADER", "format": "TEXT", "text": "Your order"},
        {"type": "FOOTER", "text": "Padaria Central"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]},
    ]
    template = template_of(template_entry("order", "Hi {{1}}", more=more))
    assert template is not None and template.parameters == ("1",)


def test_templates_are_listed_by_name_then_language() -> None:
    entries = [
        template_entry("b", "x", language="en"),
        template_entry("a", "x", language="pt_BR"),
        template_entry("a", "x", language="es"),
    ]
    assert [t.key for t in templates_of(entries)] == ["a|es", "a|pt_BR", "b|en"]


# ---------------------------------------------------------------------------------------------
# The Graph client


@pytest.fixture
def router() -> Iterator[respx.Router]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mocked:
        yield mocked
        check_posted_messages(call.request for call in mocked.calls)


@pytest.fixture
async def graph() -> AsyncIterator[GraphClient]:
    http = graph_http_client(GRAPH_BASE, 5.0, library="httpx")
    try:
        yield GraphClient(
            http, version="v25.0", phone_number_id=PHONE_NUMBER_ID, token=SecretStr(WHATSAPP_TOKEN)
        )
    finally:
        await http.aclose()


async def test_every_page_is_listed_by_its_cursor_with_the_token(
    router: respx.Router, graph: GraphClient
) -> None:
    fake = FakeTemplates([template_entry(f"t{k}", f"Body {k}") for k in range(5)], page_size=2)
    fake.install(router)
    entries = await graph.message_templates(WABA_ID)
    assert [e["name"] for e in entries] == ["t0", "t1", "t2", "t3", "t4"]
    assert len(fake.requests) == 3
    for request in fake.requests:  # never to the address in paging.next
        assert request.url.host == "graph.test"
        assert request.headers["authorization"] == f"Bearer {WHATSAPP_TOKEN}"
        assert request.url.params["status"] == "APPROVED"
        assert "components" in request.url.params["fields"]
    assert [r.url.params.get("after") for r in fake.requests] == [None, "cursor-2", "cursor-4"]


async def test_a_template_is_sent_as_the_contract_and_metas_description_say(
    router: respx.Router, graph: GraphClient
) -> None:
    sent = router.post(MESSAGES_URL).mock(
        return_value=httpx.Response(200, json={"messages": [{"id": "wamid.tpl-1"}]})
    )
    template = template_of(ORDER)
    assert template is not None
    wamid = await graph.send_template(
        "16505551234", template.name, template.language, template.components(["Ana", "123"])
    )
    assert wamid == "wamid.tpl-1"
    body = json.loads(sent.calls.last.request.content)
    check_graph_message(body)
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "123"}],
            }
        ],
    }


async def test_meta_refusing_a_template_is_not_retried_and_keeps_its_message_as_title(
    router: respx.Router, graph: GraphClient
) -> None:
    refused = httpx.Response(
        400,
        json={
            "error": {
                "message": "(#132001) Template name does not exist in the translation",
                "type": "OAuthException",
                "code": 132001,
                "fbtrace_id": "A1",
            }
        },
    )
    route = router.post(MESSAGES_URL).mock(return_value=refused)
    with pytest.raises(GraphAPIError) as raised:
        await graph.send_template("16505551234", "nope", "pt_BR", [])
    assert route.call_count == 1
    assert raised.value.code == 132001
    assert raised.value.title == "Template name does not exist in the translation"


# ---------------------------------------------------------------------------------------------
# The desk: the list kept at most 10 minutes


async def test_the_list_is_asked_of_meta_at_most_every_ten_minutes(
    router: respx.Router, graph: GraphClient
) -> None:
    fake = FakeTemplates([ORDER, NAMED], page_size=1)
    fake.install(router)
    clock = Clock()
    desk = TemplateDesk(None, {PHONE_NUMBER_ID: graph}, None, clock=clock)  # type: ignore[arg-type]
    first = await desk.catalogue(BUSINESS)
    assert [t.name for t in first.templates] == ["order_update", "welcome"]
    assert len(fake.requests) == 2  # two pages
    clock.now += CACHE_SECONDS - 1
    assert (await desk.catalogue(BUSINESS)).templates == first.templates
    assert len(fake.requests) == 2
    fake.entries = [ORDER]
    clock.now += 2  # ten minutes since it was asked
    assert [t.name for t in (await desk.catalogue(BUSINESS)).templates] == ["order_update"]
    assert len(fake.requests) == 3


async def test_a_failed_list_is_shown_and_not_kept(
    router: respx.Router, graph: GraphClient
) -> None:
    fake = FakeTemplates([ORDER])
    fake.queue.append(graph_error(400, 100, "OAuthException"))
    fake.install(router)
    desk = TemplateDesk(None, {PHONE_NUMBER_ID: graph}, None, clock=Clock())  # type: ignore[arg-type]
    failed = await desk.catalogue(BUSINESS)
    assert failed.error is not None and failed.error.code == 100 and not failed.templates
    assert [t.name for t in (await desk.catalogue(BUSINESS)).templates] == ["order_update"]


async def test_without_an_account_id_there_is_no_list(graph: GraphClient) -> None:
    desk = TemplateDesk(None, {PHONE_NUMBER_ID: graph}, None)  # type: ignore[arg-type]
    without = Business("default", PHONE_NUMBER_ID, SecretStr(WHATSAPP_TOKEN))
    assert not (await desk.catalogue(without)).configured
