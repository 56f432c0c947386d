"""Who gets into the console: off without a password, nothing without a session, sign-in and
sign-out, and the session cookie's flags."""

from __future__ import annotations

from pathlib import Path

import httpx
from console_apps import ADMIN_PASSWORD, console_app, served_console
from console_support import (
    ACTIONS,
    PAGES,
    SECRET_NAME,
    SECRET_TEXT,
    assert_console_headers,
    cookie_flags,
    fill,
    set_cookie_header,
    sign_in,
    signed_in,
    with_conversation,
)
from helpers import make_settings
from respx_upstreams import FakeUpstreams

from domain.types import ConversationState
from main import create_app

# ---------------------------------------------------------------------------------------------
# Off


async def test_without_console_password_every_console_path_is_404(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path}/off.db", external_workers=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for path in [*PAGES, "/console/login", "/console/static/console.js", "/console/x"]:
                assert (await client.get(fill(path, 1))).status_code == 404, path
            for path in [*ACTIONS, "/console/login"]:
                response = await client.post(fill(path, 1), data={"text": "hi"})
                assert response.status_code == 404, path
            assert (await client.get("/health")).status_code == 200


async def test_console_routes_stay_out_of_the_openapi_document(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        paths = (await console.client.get("/openapi.json")).json()["paths"]
    assert sorted(paths) == ["/health", "/metrics", "/ready", "/webhook"]


# ---------------------------------------------------------------------------------------------
# Signed out


async def test_signed_out_every_page_redirects_to_login_and_shows_nothing(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await with_conversation(console)
        for path in PAGES:
            response = await console.client.get(fill(path, conversation))
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/console/login")
            assert response.text == ""
            assert_console_headers(response)
        login = await console.client.get("/console/login")
        assert login.status_code == 200
        assert SECRET_NAME not in login.text and SECRET_TEXT not in login.text
        assert 'for="username">Username</label>' in login.text


async def test_signed_out_every_action_is_refused_and_changes_nothing(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await with_conversation(console)
        sent_before = len(fakes.sent())
        operators_before = await console.store.operators.all()
        for path in ACTIONS:
            response = await console.client.post(
                fill(path, conversation, operators_before[0].id),
                data={"text": "hello", "username": "mallory", "password": "x" * 12},
            )
            assert response.status_code in (303, 401), path
            assert SECRET_NAME not in response.text
        found = await console.conversation(conversation)
        assert found.state == ConversationState.ASSISTANT
        assert len(fakes.sent()) == sent_before
        assert await console.store.operators.all() == operators_before


async def test_signing_in_leads_back_to_the_page_asked_for(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await with_conversation(console)
        asked = await console.client.get(f"/console/conversations/{conversation}")
        page = f"/console/conversations/{conversation}"
        assert asked.headers["location"] == f"/console/login?next={page}"
        form = await console.client.get(asked.headers["location"])
        assert f'value="/console/conversations/{conversation}"' in form.text
        response = await console.client.post(
            "/console/login",
            data={
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "next": f"/console/conversations/{conversation}",
            },
        )
        assert response.headers["location"] == f"/console/conversations/{conversation}"
        for elsewhere in (
            "https://evil.example/",
            "//evil.example",
            "/console/../x",
            "/console/live/list",
        ):
            await console.client.post("/console/logout")
            response = await console.client.post(
                "/console/login",
                data={"username": "admin", "password": ADMIN_PASSWORD, "next": elsewhere},
            )
            assert response.headers["location"] == "/console"


# ---------------------------------------------------------------------------------------------
# Signing in and out


async def test_a_failed_sign_in_shows_the_form_with_an_error_and_sets_no_cookie(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        for username, password in (("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD)):
            response = await sign_in(console.client, username, password)
            assert response.status_code == 401
            assert "Wrong username or password." in response.text
            assert 'for="password">Password</label>' in response.text
            assert "set-cookie" not in response.headers
            assert_console_headers(response)
        assert not console.client.cookies
        assert (await console.client.get("/console")).status_code == 303


async def test_username_is_matched_without_case_or_spaces(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        await signed_in(console.client, "  Admin ", ADMIN_PASSWORD)
        assert (await console.client.get("/console")).status_code == 200


async def test_session_cookie_flags_over_http(database_url: str, fakes: FakeUpstreams) -> None:
    async with console_app(database_url, fakes) as console:
        response = await sign_in(console.client, "admin", ADMIN_PASSWORD)
        header = set_cookie_header(response, "console_session")
        flags = cookie_flags(header)
        assert "httponly" in flags
        assert flags["samesite"].lower() == "lax"
        assert flags["path"] == "/console"
        assert flags["max-age"] == str(12 * 3600)
        assert "secure" not in flags
        token = header.split(";")[0].split("=", 1)[1]
        assert len(token) >= 43  # 32 random bytes, base64url
        stored = await console.store.operators.session(token, console.clock())
        assert stored is None, "the token itself is never a session's key"


async def test_session_cookie_is_secure_over_https(database_url: str, fakes: FakeUpstreams) -> None:
    async with console_app(database_url, fakes, base_url="https://testserver") as console:
        response = await sign_in(console.client, "admin", ADMIN_PASSWORD)
        assert "secure" in cookie_flags(set_cookie_header(response, "console_session"))


def test_session_cookie_is_secure_behind_a_proxy_that_says_https(
    tmp_path: Path, fakes: FakeUpstreams
) -> None:
    """uvicorn with proxy headers (as the Dockerfile and render.yaml run it) takes the scheme
    from X-Forwarded-Proto."""
    with served_console(f"sqlite:///{tmp_path}/proxy.db", fakes) as served:
        data = {"username": "admin", "password": ADMIN_PASSWORD}
        direct = httpx.post(f"{served.url}/console/login", data=data)
        forwarded = httpx.post(
            f"{served.url}/console/login", data=data, headers={"X-Forwarded-Proto": "https"}
        )
    assert "secure" not in cookie_flags(set_cookie_header(direct, "console_session"))
    assert "secure" in cookie_flags(set_cookie_header(forwarded, "console_session"))


async def test_session_ends_after_console_session_hours(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes, console_session_hours=2) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        console.clock.advance(2 * 3600 - 60)
        assert (await console.client.get("/console")).status_code == 200
        console.clock.advance(120)
        assert (await console.client.get("/console")).status_code == 303


async def test_sign_out_ends_the_session_and_the_old_cookie_opens_nothing(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        conversation = await with_conversation(console)
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        token = console.client.cookies["console_session"]
        page = await console.client.get("/console")
        assert '<button type="submit">Sign out</button>' in page.text
        response = await console.client.post("/console/logout")
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login"
        cleared = cookie_flags(set_cookie_header(response, "console_session"))
        assert cleared["max-age"] == "0"
        replay = console.client_from("192.0.2.10")
        async with replay:
            replay.cookies.set("console_session", token, path="/console")
            for path in PAGES:
                response = await replay.get(fill(path, conversation))
                assert response.status_code == 303, path
                assert SECRET_NAME not in response.text
            response = await replay.post(f"/console/conversations/{conversation}/take-over")
            assert response.status_code == 303
        assert (await console.conversation(conversation)).state == ConversationState.ASSISTANT
