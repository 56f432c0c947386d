"""What the console's page tests share: signing in, operators, the pages and actions every
access rule covers, and reading a page as a person does (its text, headers, cookie flags)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from console_apps import Console

OPERATOR_PASSWORD = "operator-secret-91c2"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str, **headers: str
) -> httpx.Response:
    return await client.post(
        "/console/login",
        data={"username": username, "password": password},
        headers=headers,
    )


async def signed_in(client: httpx.AsyncClient, username: str, password: str) -> None:
    response = await sign_in(client, username, password)
    assert response.status_code == 303, response.text
    assert "console_session" in client.cookies


async def add_operator(console: Console, username: str, businesses: list[str]) -> int:
    """An operator made through the admin's page (the admin signed in); returns their id."""
    response = await console.client.post(
        "/console/operators",
        data={"username": username, "password": OPERATOR_PASSWORD, "businesses": businesses},
    )
    assert response.status_code == 303
    operators = await console.store.operators.all()
    return next(o.id for o in operators if o.username == username.strip().lower())


@asynccontextmanager
async def operator_client(
    console: Console, username: str, businesses: list[str]
) -> AsyncIterator[httpx.AsyncClient]:
    """An operator serving `businesses`, signed in in a browser of their own."""
    await add_operator(console, username, businesses)
    async with console.client_from("192.0.2.20") as client:
        await signed_in(client, username, OPERATOR_PASSWORD)
        yield client


CONVERSATION_PAGES = ["/console/conversations/{id}", "/console/live/conversations/{id}"]
PAGES = ["/console", "/console/live/list", "/console/operators", *CONVERSATION_PAGES]
ACTIONS = [
    "/console/conversations/{id}/take-over",
    "/console/conversations/{id}/hand-back",
    "/console/conversations/{id}/reply",
    "/console/conversations/{id}/template",
    "/console/operators",
    "/console/operators/{operator}",
    "/console/operators/{operator}/remove",
    "/console/logout",
]
SECRET_NAME = "Beatriz Secreta"
SECRET_TEXT = "my order number is 4471"


async def with_conversation(console: Console) -> int:
    """A customer's conversation whose name and words must never reach the signed-out."""
    return await console.write(SECRET_TEXT, name=SECRET_NAME, wa_id="5511988887777")


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


def visible_text(html: str) -> str:
    """The page's text as a person reads it: tags dropped, entities left as written."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
