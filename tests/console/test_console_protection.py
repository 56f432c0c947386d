"""What every console response carries (the security headers, scripts only from files), and
cross-site POSTs refused without any change."""

from __future__ import annotations

import pytest
from console_apps import ADMIN_PASSWORD, Console, console_app
from console_support import (
    ACTIONS,
    PAGES,
    assert_console_headers,
    fill,
    sign_in,
    signed_in,
    with_conversation,
)
from respx_upstreams import FakeUpstreams

from answering.handoff import HANDOFF_REQUESTED
from domain.types import ConversationState

# ---------------------------------------------------------------------------------------------
# Headers


async def test_every_console_response_carries_the_security_headers(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await with_conversation(console)
        client = console.client
        assert_console_headers(await client.get("/console/login"))
        assert_console_headers(await sign_in(client, "admin", "wrong-password"))
        assert_console_headers(await sign_in(client, "admin", ADMIN_PASSWORD))
        for path in PAGES:
            response = await client.get(fill(path, conversation))
            assert response.status_code == 200, path
            assert_console_headers(response)
        for missing in ("/console/conversations/999", "/console/nothing", "/console/x/y"):
            response = await client.get(missing)
            assert response.status_code == 404
            assert_console_headers(response)
        response = await client.post(f"/console/conversations/{conversation}/take-over")
        assert_console_headers(response)
        for name, kind in (("console.css", "text/css"), ("console.js", "javascript")):
            response = await client.get(f"/console/static/{name}")
            assert response.status_code == 200
            assert kind in response.headers["content-type"]
            assert_console_headers(response, page=False)
        missing_file = await client.get("/console/static/nothing.js")
        assert missing_file.status_code == 404
        assert_console_headers(missing_file, page=False)


async def test_pages_load_scripts_and_styles_only_from_files(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await with_conversation(console)
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        for path in ["/console/login", *PAGES]:
            html = (await console.client.get(fill(path, conversation))).text
            assert "<script>" not in html and "style=" not in html and " on" + "click" not in html
            assert "<style" not in html


# ---------------------------------------------------------------------------------------------
# Cross-site POSTs


CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
]


async def signed_in_console(console: Console) -> tuple[int, int]:
    conversation = await with_conversation(console)
    await signed_in(console.client, "admin", ADMIN_PASSWORD)
    response = await console.client.post(
        "/console/operators",
        data={"username": "olivia", "password": "olivia-password", "businesses": []},
    )
    assert response.status_code == 303
    operators = await console.store.operators.all()
    return conversation, next(o.id for o in operators if o.username == "olivia")


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_cross_site_posts_are_refused_and_change_nothing(
    database_url: str, fakes: FakeUpstreams, headers: dict[str, str]
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation, olivia = await signed_in_console(console)
        key = (await console.conversation(conversation)).conversation_key
        await console.store.states.change(key, ConversationState.WAITING, event=HANDOFF_REQUESTED)
        sent_before = len(fakes.sent())
        before = await console.store.operators.all()
        for path in ACTIONS:
            response = await console.client.post(
                fill(path, conversation, olivia),
                data={"text": "forged", "username": "forged-user", "password": "forged-pass"},
                headers=headers,
            )
            assert response.status_code == 403, path
            assert "another site" in response.text
            assert_console_headers(response)
        assert (await console.conversation(conversation)).state == ConversationState.WAITING
        assert len(fakes.sent()) == sent_before
        assert await console.store.operators.all() == before
        assert (await console.client.get("/console")).status_code == 200  # still signed in


async def test_a_cross_site_sign_in_is_refused_without_a_cookie(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        response = await sign_in(
            console.client, "admin", ADMIN_PASSWORD, **{"Sec-Fetch-Site": "cross-site"}
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


async def test_same_origin_posts_from_a_browser_pass(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes, public_url="https://console.example") as console:
        conversation, _ = await signed_in_console(console)
        for headers in (
            {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
            {"Sec-Fetch-Site": "none"},
            {"Origin": "https://console.example"},  # PUBLIC_URL, as a proxy presents the site
        ):
            response = await console.client.post(
                f"/console/conversations/{conversation}/take-over", headers=headers
            )
            assert response.status_code == 303, headers
        assert (await console.conversation(conversation)).state == ConversationState.OPERATOR
