"""A conversation's page over the real store: each sent message's status word, WhatsApp's 24-hour
window, and the business's templates (listed from a fake Meta, sent, refused)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from console_apps import ADMIN_PASSWORD
from console_support import signed_in, visible_text
from delivery_support import (
    WABA_ID,
    FakeTemplates,
    last_wamid,
    statuses_payload,
    template_entry,
    template_sends,
)
from helpers import Harness, make_settings, running_app, text_payload
from meta_openapi import check_graph_message
from respx_upstreams import FakeUpstreams

from domain.types import ConversationState

USER = "16505551234"
ORDER = template_entry("order_update", "Olá {{1}}, seu pedido {{2}} saiu para entrega")
WELCOME = template_entry("welcome", "Hi {{first_name}}, welcome!", language="en", named=True)
HELLO = template_entry("hello", "Hello! We are open again.", language="en")


@dataclass
class Page:
    harness: Harness
    templates: FakeTemplates
    conversation_id: int

    @property
    def url(self) -> str:
        return f"/console/conversations/{self.conversation_id}"

    async def text(self, query: str = "") -> str:
        response = await self.harness.client.get(self.url + query)
        assert response.status_code == 200
        return visible_text(response.text)

    async def send_template(self, template: str, *parameters: str) -> str:
        """Post the template form as a browser would; the page it leads to, as text."""
        data: dict[str, Any] = {"template": template, "parameter": list(parameters)}
        response = await self.harness.client.post(f"{self.url}/template", data=data)
        assert response.status_code == 303
        return await self.text(response.headers["location"].removeprefix(self.url))


@asynccontextmanager
async def conversation_page(
    database_url: str, fakes: FakeUpstreams, *, ts: int = 0, **overrides: Any
) -> AsyncIterator[Page]:
    """The app with the console and a WABA id, one conversation the assistant answered, and
    the admin signed in."""
    values: dict[str, Any] = {
        "console_password": ADMIN_PASSWORD,
        "whatsapp_business_account_id": WABA_ID,
    }
    values.update(overrides)
    templates = FakeTemplates([ORDER, WELCOME, HELLO], page_size=2)
    templates.install(fakes.router)
    async with running_app(make_settings(database_url, **values), fakes) as harness:
        await harness.post(text_payload("Where is my order?", message_id="wamid.in-1", ts=ts))
        await harness.settle()
        [listed] = await harness.services.store.transcripts.listed(
            phone_number_ids=None, state=None, search=None, limit=5
        )
        await signed_in(harness.client, "admin", ADMIN_PASSWORD)
        yield Page(harness, templates, listed.conversation.id)


async def test_each_sent_message_shows_its_latest_status(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        answer = last_wamid(fakes)
        assert "Delivered" not in await page.text()
        for status, word in (("delivered", "Delivered"), ("read", "Read"), ("sent", "Read")):
            await page.harness.post(statuses_payload((answer, status)))
            live = await page.harness.client.get(
                f"/console/live/conversations/{page.conversation_id}"
            )
            assert word in visible_text(live.text)
        await page.harness.post(statuses_payload((answer, "played")))
        assert "Played" in await page.text()


async def test_a_failure_shows_metas_title_and_code(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        failure = (last_wamid(fakes), "failed", 131049, "This message was not delivered")
        await page.harness.post(statuses_payload(failure))
        assert "Failed: This message was not delivered (131049)" in await page.text()


async def test_the_window_is_open_until_a_day_after_the_users_last_message(
    database_url: str, fakes: FakeUpstreams
) -> None:
    written = int(time.time()) - 3600
    async with conversation_page(database_url, fakes, ts=written) as page:
        html = (await page.harness.client.get(page.url)).text
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(written + 24 * 3600))
        assert f'Window open until <time datetime="{until}">' in html
        assert "Window closed" not in html


async def test_an_old_message_is_shown_the_window_closed_and_a_reply_refused(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes, ts=int(time.time()) - 30 * 3600) as page:
        text = await page.text()
        assert "Where is my order?" in text and "Window closed" in text
        assert "Window open" not in text
        assert fakes.sent() == []  # not answered
        response = await page.harness.client.post(f"{page.url}/reply", data={"text": "Hi!"})
        assert "24 hours" in await page.text(response.headers["location"].removeprefix(page.url))
        assert fakes.sent() == []
        # a template may still go out
        assert "Template sent." in await page.send_template("hello|en")
        assert len(template_sends(fakes.graph_calls)) == 1


async def test_the_form_offers_the_approved_templates_and_their_parameters(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        html = (await page.harness.client.get(page.url)).text
        assert '<label for="template">Template</label>' in html
        assert '<option value="hello|en"' in html and '<option value="welcome|en"' in html
        assert "This template has no parameters." in html  # hello, the first, has none
        assert ">Send template</button>" in html
        order = (await page.harness.client.get(page.url + "?template=order_update%7Cpt_BR")).text
        assert '<label for="parameter-1">Parameter 1</label>' in order
        assert '<label for="parameter-2">Parameter 2</label>' in order
        assert "Olá {{1}}, seu pedido {{2}} saiu para entrega" in order
        named = (await page.harness.client.get(page.url + "?template=welcome%7Cen")).text
        assert '<label for="parameter-1">first_name</label>' in named
        assert '<label for="parameter-2">' not in named
        assert len(page.templates.requests) == 2  # two pages, once: then kept


async def test_a_template_is_sent_takes_the_conversation_over_and_shows_its_body(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        text = await page.send_template("order_update|pt_BR", "Ana", "4471")
        assert "Template sent." in text
        assert "Olá Ana, seu pedido 4471 saiu para entrega" in text
        [sent] = template_sends(fakes.graph_calls)
        check_graph_message(sent)
        assert sent["to"] == USER
        assert sent["template"] == {
            "name": "order_update",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "4471"},
                    ],
                }
            ],
        }
        found = await page.harness.services.store.states.get(page.conversation_id)
        assert found is not None and found.state is ConversationState.OPERATOR
        assert found.operator == "admin"
        await page.harness.post(statuses_payload((last_wamid(fakes), "delivered")))
        text = await page.text()
        assert text.index("saiu para entrega") < text.index("Delivered")


async def test_named_parameters_are_sent_by_name_and_none_means_no_components(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        assert "Template sent." in await page.send_template("welcome|en", "Bia")
        assert "Template sent." in await page.send_template("hello|en")
        named, bare = template_sends(fakes.graph_calls)
        for body in (named, bare):
            check_graph_message(body)
        assert named["template"]["components"] == [
            {
                "type": "body",
                "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Bia"}],
            }
        ]
        assert "components" not in bare["template"]
        text = await page.text()
        assert "Hi Bia, welcome!" in text and "Hello! We are open again." in text


async def test_an_empty_parameter_is_refused_and_nothing_sent(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        text = await page.send_template("order_update|pt_BR", "Ana", "   ")
        assert "Not sent: Parameter 2 is empty." in text
        text = await page.send_template("order_update|pt_BR", "Ana")  # the form of another
        assert "fill in the parameters of the template you chose" in text
        text = await page.send_template("nope|pt_BR")
        assert "choose one of the approved templates" in text
        assert template_sends(fakes.graph_calls) == []
        found = await page.harness.services.store.states.get(page.conversation_id)
        assert found is not None and found.state is ConversationState.ASSISTANT


def meta_error(code: int, message: str) -> httpx.Response:
    return httpx.Response(
        400,
        json={
            "error": {
                "message": f"(#{code}) {message}",
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": message},
                "fbtrace_id": "AbC",
            }
        },
    )


META_ERRORS = [
    (131047, "Re-engagement message"),
    (132000, "Number of parameters does not match the expected number of params"),
    (132001, "Template name does not exist in the translation"),
    (132005, "Translated text too long"),
    (132007, "Template format character policy violated"),
    (132012, "Parameter format does not match format in the created template"),
    (132015, "Template is Paused"),
    (132016, "Template is Disabled"),
    (131026, "Message undeliverable"),
]


async def test_each_meta_error_on_a_template_is_shown_and_not_retried(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        for code, title in META_ERRORS:
            fakes.send_queue.append(meta_error(code, title))
            before = len(template_sends(fakes.graph_calls))
            text = await page.send_template("order_update|pt_BR", "Ana", "1")
            assert f"WhatsApp refused it: {title} ({code})." in text, code
            assert len(template_sends(fakes.graph_calls)) == before + 1  # once, not again
            assert "Olá Ana" not in text  # nothing went into the transcript


async def test_metas_error_on_a_reply_is_shown_with_its_title_and_code(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        fakes.send_queue.append(meta_error(131047, "Re-engagement message"))
        calls = len(fakes.send_attempts())
        response = await page.harness.client.post(f"{page.url}/reply", data={"text": "Hi!"})
        text = await page.text(response.headers["location"].removeprefix(page.url))
        assert "WhatsApp refused it: Re-engagement message (131047)." in text
        assert len(fakes.send_attempts()) == calls + 1


async def test_an_operators_reply_shows_its_status(database_url: str, fakes: FakeUpstreams) -> None:
    async with conversation_page(database_url, fakes) as page:
        await page.harness.client.post(f"{page.url}/reply", data={"text": "A person here."})
        reply = last_wamid(fakes)
        await page.harness.post(statuses_payload((reply, "read")))
        text = await page.text()
        assert text.index("A person here.") < text.index("Read")


async def test_without_an_account_id_the_page_says_what_templates_need(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes, whatsapp_business_account_id=None) as page:
        text = await page.text()
        assert "Templates need WHATSAPP_BUSINESS_ACCOUNT_ID" in text
        assert "Send template" not in text and page.templates.requests == []
        posted = await page.send_template("hello|en")
        assert "Templates need WHATSAPP_BUSINESS_ACCOUNT_ID" in posted
        assert template_sends(fakes.graph_calls) == []


def test_the_helpers_payload_is_metas() -> None:
    payload = statuses_payload(("wamid.x", "failed", 131026, "Message undeliverable"))
    assert json.dumps(payload).count('"status": "failed"') == 1


async def test_a_cross_site_template_post_is_refused_and_sends_nothing(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with conversation_page(database_url, fakes) as page:
        response = await page.harness.client.post(
            f"{page.url}/template",
            data={"template": "hello|en"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert response.status_code == 403
        assert template_sends(fakes.graph_calls) == []
        found = await page.harness.services.store.states.get(page.conversation_id)
        assert found is not None and found.state is ConversationState.ASSISTANT
