"""Who gets into the console: off without a password, nothing without a session, sign-in and
sign-out, the cookie's flags, the headers of every response, and cross-site POSTs refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import make_settings
from console_support import (
    ADMIN_PASSWORD,
    CSP,
    Console,
    console_app,
    served_console,
    sign_in,
    signed_in,
)
from memory_data import MemoryConsoleData

from console.data import ConversationState
from main import create_app

CONVERSATION_PAGES = ["/console/conversations/{id}", "/console/live/conversations/{id}"]
PAGES = ["/console", "/console/live/list", "/console/operators", *CONVERSATION_PAGES]
ACTIONS = [
    "/console/conversations/{id}/take-over",
    "/console/conversations/{id}/hand-back",
    "/console/conversations/{id}/reply",
    "/console/operators",
    "/console/operators/{operator}",
    "/console/operators/{operator}/remove",
    "/console/logout",
]
SECRET_NAME = "Beatriz Secreta"
SECRET_TEXT = "my order number is 4471"


def with_conversation(data: MemoryConsoleData) -> int:
    conversation = data.add_conversation(name=SECRET_NAME, number="5511988887777")
    data.add_entry(conversation, "user", SECRET_TEXT)
    return conversation


def fill(path: str, conversation: int, operator: int = 2) -> str:
    return path.format(id=conversation, operator=operator)


def set_cookie_header(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def cookie_flags(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")[1:]]
    pairs = [(*p.split("=", 1), "")[:2] for p in parts]
    return {name.lower(): value for name, value in pairs}


def assert_console_headers(response: httpx.Response, *, page: bool = True) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    if page:
        assert response.headers["cache-control"] == "no-store"


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


async def test_console_routes_stay_out_of_the_openapi_document(database_url: str) -> None:
    async with console_app(database_url) as console:
        paths = (await console.client.get("/openapi.json")).json()["paths"]
    assert sorted(paths) == ["/health", "/metrics", "/ready", "/webhook"]


# ---------------------------------------------------------------------------------------------
# Signed out


async def test_signed_out_every_page_redirects_to_login_and_shows_nothing(
    database_url: str,
) -> None:
    async with console_app(database_url) as console:
        conversation = with_conversation(console.data)
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


async def test_signed_out_every_action_is_refused_and_changes_nothing(database_url: str) -> None:
    async with console_app(database_url) as console:
        conversation = with_conversation(console.data)
        operators_before = await console.store.operators.all()
        for path in ACTIONS:
            response = await console.client.post(
                fill(path, conversation, operators_before[0].id),
                data={"text": "hello", "username": "mallory", "password": "x" * 12},
            )
            assert response.status_code in (303, 401), path
            assert SECRET_NAME not in response.text
        summary = console.data.state_of(conversation)
        assert summary.state == ConversationState.ASSISTANT
        assert console.data.sent == []
        assert await console.store.operators.all() == operators_before


async def test_signing_in_leads_back_to_the_page_asked_for(database_url: str) -> None:
    async with console_app(database_url) as console:
        conversation = with_conversation(console.data)
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
        for elsewhere in ("https://evil.example/", "//evil.example", "/console/../admin"):
            await console.client.post("/console/logout")
            response = await console.client.post(
                "/console/login",
                data={"username": "admin", "password": ADMIN_PASSWORD, "next": elsewhere},
            )
            assert response.headers["location"] == "/console"


# ---------------------------------------------------------------------------------------------
# Signing in and out


async def test_a_failed_sign_in_shows_the_form_with_an_error_and_sets_no_cookie(
    database_url: str,
) -> None:
    async with console_app(database_url) as console:
        for username, password in (("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD)):
            response = await sign_in(console.client, username, password)
            assert response.status_code == 401
            assert "Wrong username or password." in response.text
            assert 'for="password">Password</label>' in response.text
            assert "set-cookie" not in response.headers
            assert_console_headers(response)
        assert not console.client.cookies
        assert (await console.client.get("/console")).status_code == 303


async def test_username_is_matched_without_case_or_spaces(database_url: str) -> None:
    async with console_app(database_url) as console:
        await signed_in(console.client, "  Admin ", ADMIN_PASSWORD)
        assert (await console.client.get("/console")).status_code == 200


async def test_session_cookie_flags_over_http(database_url: str) -> None:
    async with console_app(database_url) as console:
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


async def test_session_cookie_is_secure_over_https(database_url: str) -> None:
    async with console_app(database_url, base_url="https://testserver") as console:
        response = await sign_in(console.client, "admin", ADMIN_PASSWORD)
        assert "secure" in cookie_flags(set_cookie_header(response, "console_session"))


def test_session_cookie_is_secure_behind_a_proxy_that_says_https(tmp_path: Path) -> None:
    """uvicorn with proxy headers (as the Dockerfile and render.yaml run it) takes the scheme
    from X-Forwarded-Proto."""
    with served_console(f"sqlite:///{tmp_path}/proxy.db", MemoryConsoleData()) as served:
        data = {"username": "admin", "password": ADMIN_PASSWORD}
        direct = httpx.post(f"{served.url}/console/login", data=data)
        forwarded = httpx.post(
            f"{served.url}/console/login", data=data, headers={"X-Forwarded-Proto": "https"}
        )
    assert "secure" not in cookie_flags(set_cookie_header(direct, "console_session"))
    assert "secure" in cookie_flags(set_cookie_header(forwarded, "console_session"))


async def test_session_ends_after_console_session_hours(database_url: str) -> None:
    async with console_app(database_url, console_session_hours=2) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        console.clock.advance(2 * 3600 - 60)
        assert (await console.client.get("/console")).status_code == 200
        console.clock.advance(120)
        assert (await console.client.get("/console")).status_code == 303


async def test_sign_out_ends_the_session_and_the_old_cookie_opens_nothing(
    database_url: str,
) -> None:
    async with console_app(database_url) as console:
        conversation = with_conversation(console.data)
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
        assert console.data.state_of(conversation).state == ConversationState.ASSISTANT


# ---------------------------------------------------------------------------------------------
# Headers


async def test_every_console_response_carries_the_security_headers(database_url: str) -> None:
    async with console_app(database_url) as console:
        conversation = with_conversation(console.data)
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


async def test_pages_load_scripts_and_styles_only_from_files(database_url: str) -> None:
    async with console_app(database_url) as console:
        conversation = with_conversation(console.data)
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
    conversation = with_conversation(console.data)
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
    database_url: str, headers: dict[str, str]
) -> None:
    async with console_app(database_url) as console:
        conversation, olivia = await signed_in_console(console)
        console.data.set_state(conversation, ConversationState.WAITING)
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
        assert console.data.state_of(conversation).state == ConversationState.WAITING
        assert console.data.sent == []
        assert await console.store.operators.all() == before
        assert (await console.client.get("/console")).status_code == 200  # still signed in


async def test_a_cross_site_sign_in_is_refused_without_a_cookie(database_url: str) -> None:
    async with console_app(database_url) as console:
        response = await sign_in(
            console.client, "admin", ADMIN_PASSWORD, **{"Sec-Fetch-Site": "cross-site"}
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


async def test_same_origin_posts_from_a_browser_pass(database_url: str) -> None:
    async with console_app(database_url, public_url="https://console.example") as console:
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
        assert console.data.state_of(conversation).state == ConversationState.OPERATOR
