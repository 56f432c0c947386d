"""The admin's Operators page: add and remove operators, their businesses and passwords."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Annotated

from fastapi import Form, Request, Response

from console.languages import N_, Language
from console.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from console.sessions import USERNAME, normalise_username
from console.web import (
    PREFIX,
    AdminDep,
    console_of,
    language_of,
    not_found,
    operators_of,
    redirect_with_flash,
    render,
)
from ops.logs import short_hash

log = logging.getLogger("console")

PAGE = f"{PREFIX}/operators"
USERNAME_RULE = N_("A username is 1 to 64 lowercase letters, digits, dots, dashes, @ or _.")
PASSWORD_RULE = N_("A password has at least %(min)s characters.")

Businesses = Annotated[list[str], Form()]


async def operators_page(request: Request, admin: AdminDep) -> Response:
    operators = await operators_of(request).all()
    names = console_of(request).settings.businesses.names()
    return render(
        request,
        "operators.html",
        operators=operators,
        businesses=names,
        min_password=MIN_PASSWORD_LENGTH,
    )


def back(request: Request, kind: str, text: str, **values: object) -> Response:
    """To the page, saying `text` (a msgid, with its values) in the operator's language."""
    said = language_of(request).gettext(text, **values)
    return redirect_with_flash(request, PAGE, kind, said)


def password_problem(password: str, language: Language) -> str | None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return language.gettext(PASSWORD_RULE, min=MIN_PASSWORD_LENGTH)
    return None


def chosen(businesses: list[str], allowed: Collection[str]) -> list[str] | None:
    """The businesses ticked, or None when one is not among those that may be."""
    picked = sorted(set(businesses))
    return picked if set(picked) <= set(allowed) else None


async def add_operator(
    request: Request,
    admin: AdminDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    businesses: Businesses = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    name, language = normalise_username(username), language_of(request)
    if not USERNAME.fullmatch(name):
        return back(
            request, "error", N_("Not added. %(rule)s"), rule=language.gettext(USERNAME_RULE)
        )
    problem = password_problem(password, language)
    if problem:
        return back(request, "error", N_("Not added. %(rule)s"), rule=problem)
    picked = chosen(businesses, console_of(request).settings.businesses.names())
    if picked is None:
        return back(request, "error", N_("Not added: unknown business."))
    console = console_of(request)
    password_hash = await console.passwords.hash(password)
    added = await operators_of(request).add(name, password_hash, picked, console.clock())
    if added is None:
        return back(request, "error", N_("Not added: %(name)s exists already."), name=name)
    log.info("operator %s added", short_hash(name))
    return back(request, "ok", N_("Added %(name)s."), name=name)


async def update_operator(
    request: Request,
    admin: AdminDep,
    operator_id: int,
    password: Annotated[str, Form()] = "",
    businesses: Businesses = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    operators = operators_of(request)
    operator = await operators.get(operator_id)
    if operator is None or operator.is_admin:
        raise not_found()
    allowed = {*console_of(request).settings.businesses.names(), *operator.businesses}
    picked = chosen(businesses, allowed)
    if picked is None:
        return back(request, "error", N_("Not saved: unknown business."))
    if password:
        problem = password_problem(password, language_of(request))
        if problem:
            return back(request, "error", N_("Not saved. %(rule)s"), rule=problem)
        await operators.set_password(
            operator_id, await console_of(request).passwords.hash(password)
        )
        await operators.end_sessions(operator_id)  # whoever knew the old one is signed out
    await operators.set_businesses(operator_id, picked)
    log.info("operator %s changed", short_hash(operator.username))
    if password:
        return back(
            request, "ok", N_("Saved %(name)s's businesses and password."), name=operator.username
        )
    return back(request, "ok", N_("Saved %(name)s's businesses."), name=operator.username)


async def remove_operator(request: Request, admin: AdminDep, operator_id: int) -> Response:
    operators = operators_of(request)
    operator = await operators.get(operator_id)
    if operator is None or operator.is_admin or not await operators.remove(operator_id):
        raise not_found()
    log.info("operator %s removed", short_hash(operator.username))
    return back(
        request, "ok", N_("Removed %(name)s; their sessions have ended."), name=operator.username
    )
