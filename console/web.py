"""The console's web plumbing: shared state, templates, headers, sign-in and origin checks."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from config import Settings
from console import flash, words
from console.knowledge_upload import Uploads
from console.languages import N_, Language, load_languages, negotiate
from console.pages import environment
from console.passwords import Passwords
from console.sessions import session_operator
from documents.sync import MAX_FILE_BYTES
from domain.businesses import BusinessNames
from storage.operators import Operator, Operators

if TYPE_CHECKING:  # handed over by the lifespan; imported here for their types only
    from answering.operators import OperatorDesk
    from answering.templates import TemplateDesk
    from documents.library import Library
    from storage.store import Store

HERE = Path(__file__).resolve().parent
PREFIX = "/console"
SESSION_COOKIE = "console_session"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SAFE_NEXT = re.compile(r"/console(?:/[A-Za-z0-9_-]+)*")
NOT_NEXT = (  # not pages to return to
    f"{PREFIX}/log",
    f"{PREFIX}/live",
    f"{PREFIX}/static",
    f"{PREFIX}/media",
)


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    path: str
    admin_only: bool = False


# The header's links, in order: another page is one more line here (and its routes).
NAV: list[NavItem] = [
    NavItem(N_("Conversations"), PREFIX),
    NavItem(N_("Knowledge"), f"{PREFIX}/knowledge"),
    NavItem(N_("Usage"), f"{PREFIX}/usage"),
    NavItem(N_("Operators"), f"{PREFIX}/operators", admin_only=True),
]


class Console:
    """What every console route shares, kept on `app.state.console`: made with the app, and
    given the store, the operator desk and the documents' library when the service starts."""

    store: Store  # conversations, operators, usage: the pages call its methods
    desk: OperatorDesk  # an operator's actions, sent from each conversation's own business
    template_desk: TemplateDesk  # each business's approved templates, listed and sent
    library: Library  # each business's documents in Gemini File Search

    def __init__(self, settings: Settings, names: BusinessNames | None = None) -> None:
        self.settings = settings
        self.names = names or BusinessNames(None)
        self.passwords = Passwords()
        self.clock: Callable[[], float] = time.time  # tests move it
        self.uploads = Uploads()  # documents still on their way to File Search
        self.max_upload_bytes = MAX_FILE_BYTES  # tests lower it
        static = HERE / "static"
        self._versions = {  # "vendor/uplot/uPlot.min.css" and the like too
            path.relative_to(static).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:10]
            for path in static.rglob("*")
            if path.is_file()
        }
        self.languages = load_languages()
        shared = {"static": self._static_url, "shop": self.shop}
        self.templates = {
            code: environment(language, shared, self.shown)
            for code, language in self.languages.items()
        }

    def language(self, accept_language: str | None) -> Language:
        """The console's language for a browser that sends this Accept-Language."""
        return self.languages[negotiate(self.settings.console_language, accept_language)]

    def start(
        self, store: Store, desk: OperatorDesk, template_desk: TemplateDesk, library: Library
    ) -> None:
        """What the pages reach, once the lifespan has opened it (before the first request)."""
        self.store, self.desk, self.template_desk = store, desk, template_desk
        self.library = library

    def shown(self, business: str, language: Language) -> str:
        """A business as people know it (a key may be `default`, which nobody calls a shop)."""
        return self.names.shown(business) or language.gettext(words.THIS_BUSINESS)

    def shop(self) -> str:
        """The one business's name, for the header; "" with several, or none known yet."""
        businesses = list(self.settings.businesses)
        return self.names.shown(businesses[0].name) if len(businesses) == 1 else ""

    def _static_url(self, name: str) -> str:
        """A static file's address, with its content's hash so a new version is fetched."""
        return f"{PREFIX}/static/{name}?v={self._versions[name]}"


# ---------------------------------------------------------------------------------------------
# What a route reaches through the request


def console_of(request: Request) -> Console:
    return cast(Console, request.app.state.console)


def operators_of(request: Request) -> Operators:
    return console_of(request).store.operators


def now_of(request: Request) -> float:
    return console_of(request).clock()


def language_of(request: Request) -> Language:
    """The request's console language: CONSOLE_LANGUAGE, or the browser's."""
    return console_of(request).language(request.headers.get("accept-language"))


# ---------------------------------------------------------------------------------------------
# Refusals, turned into pages by ConsoleRoute


class SignedOut(Exception):
    """No live session: the login page instead."""


class Refusal(Exception):
    """A page refused: `message` is a msgid (marked with N_), said in the page's language."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found() -> Refusal:
    return Refusal(404, N_("There is nothing here, or it is not yours to see."))


async def current_operator(request: Request) -> Operator:
    """The signed-in operator, or SignedOut."""
    token = request.cookies.get(SESSION_COOKIE)
    operator = await session_operator(operators_of(request), token, now_of(request))
    if operator is None:
        raise SignedOut()
    request.state.operator = operator
    return operator


async def current_admin(operator: Annotated[Operator, Depends(current_operator)]) -> Operator:
    if not operator.is_admin:
        raise Refusal(403, N_("Only the admin can see this page."))
    return operator


OperatorDep = Annotated[Operator, Depends(current_operator)]
AdminDep = Annotated[Operator, Depends(current_admin)]


def is_cross_site(request: Request, public_url: str | None) -> bool:
    """A browser says where a request comes from (Sec-Fetch-Site, else Origin); anything but
    this site is refused. Requests without either header are not from a browser's page."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    if public_url and origin.lower() == public_url.lower():
        return False
    parsed = urlsplit(origin.lower())
    host = request.headers.get("host", "").lower()
    return not (parsed.scheme in ("http", "https") and host and parsed.netloc == host)


async def same_site(request: Request) -> None:
    """Every POST route's first dependency: a cross-site POST is refused before anything."""
    if is_cross_site(request, console_of(request).settings.public_url):
        raise Refusal(403, N_("This request came from another site and was refused."))


# ---------------------------------------------------------------------------------------------
# Responses


def secure(response: Response, *, page: bool = True) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    if page:  # a route that says how its answer may be kept (a transcript's file) keeps that
        headers.setdefault("Cache-Control", "no-store")
    return response


def render(
    request: Request, template: str, status: int = 200, *, partial: bool = False, **context: Any
) -> HTMLResponse:
    """A page (or, `partial`, a piece a live update swaps in), with the flash message shown
    once: a full page consumes it."""
    operator: Operator | None = getattr(request.state, "operator", None)
    message = None if partial else flash.read(request, request.cookies.get(SESSION_COOKIE))
    values: dict[str, Any] = {
        "operator": operator,
        "nav": [n for n in NAV if operator and (operator.is_admin or not n.admin_only)],
        "path": request.url.path,
        "flash": message,
        **context,
    }
    language = language_of(request)
    html = console_of(request).templates[language.code].get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    if message is not None:
        flash.clear(request, response)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def redirect_with_flash(request: Request, url: str, kind: str, text: str) -> RedirectResponse:
    response = redirect(url)
    flash.put(request, response, request.cookies.get(SESSION_COOKIE), kind, text)
    return response


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if value and SAFE_NEXT.fullmatch(value) and not value.startswith(NOT_NEXT):
        return value
    return PREFIX


def signed_out_response(request: Request) -> Response:
    """GET: to the login page, remembering the page; anything else: to the login page too."""
    target = f"{PREFIX}/login"
    path = request.url.path
    if request.method == "GET" and path != PREFIX and safe_next(path) == path:
        target += f"?next={path}"
    response = redirect(target)
    if SESSION_COOKIE in request.cookies:
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="lax")
    return response


def refusal_page(request: Request, refusal: Refusal) -> Response:
    message = language_of(request).gettext(refusal.message)  # a msgid: marked with N_
    return render(request, "error.html", refusal.status, message=message)


class ConsoleRoute(APIRoute):
    """A console route: refusals become pages, and every response carries the headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignedOut:
                response = signed_out_response(request)
            except Refusal as refusal:
                response = refusal_page(request, refusal)
            except RequestValidationError:
                response = refusal_page(request, not_found())
            except HTTPException as error:
                refused = Refusal(error.status_code, N_("Request refused."))
                response = refusal_page(request, refused)
            return secure(response)

        return console_handler
