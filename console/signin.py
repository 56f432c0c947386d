"""The console's sign-in page, and the Sign out button's route."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Form, Request, Response

from console.languages import N_
from console.sessions import Refused, SignedIn, Throttled, session_operator, sign_in, sign_out
from console.web import (
    PREFIX,
    SESSION_COOKIE,
    OperatorDep,
    console_of,
    language_of,
    now_of,
    operators_of,
    redirect,
    render,
    safe_next,
)

WRONG = N_("Wrong username or password.")


async def login_page(request: Request, next: str = "") -> Response:
    """The sign-in form; an operator already signed in goes straight on."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        operator = await session_operator(operators_of(request), token, now_of(request))
        if operator is not None:
            return redirect(safe_next(next))
    return login_form(request, next=next)


def login_form(
    request: Request, status: int = 200, *, next: str = "", error: str | None = None
) -> Response:
    return render(request, "login.html", status, error=error, next=safe_next(next), username="")


async def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    console = console_of(request)
    operators = operators_of(request)
    outcome = await sign_in(
        operators,
        console.passwords,
        username=username,
        password=password,
        address=request.client.host if request.client else "unknown",
        now=console.clock(),
        session_seconds=console.settings.console_session_hours * 3600,
    )
    language = language_of(request)
    if isinstance(outcome, Throttled):
        minutes = max(1, math.ceil(outcome.retry_after / 60))
        response = render(
            request,
            "login.html",
            429,
            error=language.ngettext(
                "Too many failed sign-ins. Try again in %(num)s minute.",
                "Too many failed sign-ins. Try again in %(num)s minutes.",
                minutes,
            ),
            next=safe_next(next),
            username=username[:64],
        )
        response.headers["Retry-After"] = str(math.ceil(outcome.retry_after))
        return response
    if isinstance(outcome, Refused):
        return render(
            request,
            "login.html",
            401,
            error=language.gettext(WRONG),
            next=safe_next(next),
            username=username[:64],
        )
    await sign_out(operators, request.cookies.get(SESSION_COOKIE))  # a fresh session each time
    return signed_in_response(request, outcome, safe_next(next))


def signed_in_response(request: Request, outcome: SignedIn, target: str) -> Response:
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.token,
        max_age=int(console_of(request).settings.console_session_hours * 3600),
        path=PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


async def logout(request: Request, operator: OperatorDep) -> Response:
    """End the session on the server (the cookie, replayed, opens nothing) and forget it here."""
    await sign_out(operators_of(request), request.cookies.get(SESSION_COOKIE))
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(
        SESSION_COOKIE,
        path=PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response
