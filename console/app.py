"""The console on the app: its routes and static files under /console, and its start-up work."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse
from starlette.exceptions import HTTPException
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from config import Settings
from console import conversations, knowledge, media, operators, signin, template_sending, usage
from console.sessions import ensure_admin
from console.web import HERE, PREFIX, Console, ConsoleRoute, not_found, same_site, secure

if TYPE_CHECKING:
    from answering.operators import OperatorDesk
    from answering.templates import TemplateDesk
    from documents.library import Library
    from storage.store import Store


class ConsoleStatic(StaticFiles):
    """The stylesheet and script, with the console's headers; revalidated, not stored blindly
    (their addresses carry a content hash, so a new version is fetched at once anyway)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as error:
            response = PlainTextResponse(str(error.detail), status_code=error.status_code)
        secure(response, page=False)
        response.headers["Cache-Control"] = "no-cache"
        return response


async def console_home(request: Request) -> Response:
    """`/console/` is `/console`."""
    query = request.url.query
    return RedirectResponse(PREFIX + (f"?{query}" if query else ""), status_code=308)


async def nothing_here(request: Request, rest: str) -> Response:
    """Any other /console address: a 404 page with the console's headers."""
    raise not_found()


def add_console(app: FastAPI, settings: Settings) -> None:
    """Register the console after the service's own routes, so none of them (the webhook
    above all) matches any later or pays for any of this."""
    app.state.console = Console(settings, app.state.business_names)
    get: list[tuple[str, Callable[..., Any]]] = [
        (PREFIX, conversations.conversation_list),
        (f"{PREFIX}/login", signin.login_page),
        (f"{PREFIX}/live/list", conversations.conversation_rows),
        (f"{PREFIX}/conversations/{{conversation_id}}", conversations.conversation_page),
        (f"{PREFIX}/live/conversations/{{conversation_id}}", conversations.conversation_live),
        (f"{PREFIX}/media/{{token}}", media.media_file),
        (f"{PREFIX}/operators", operators.operators_page),
        (f"{PREFIX}/knowledge", knowledge.knowledge_page),
        (f"{PREFIX}/live/knowledge", knowledge.knowledge_rows),
        (f"{PREFIX}/usage", usage.usage_page),
    ]
    post: list[tuple[str, Callable[..., Any]]] = [
        (f"{PREFIX}/login", signin.login),
        (f"{PREFIX}/logout", signin.logout),
        (f"{PREFIX}/conversations/{{conversation_id}}/take-over", conversations.take_over),
        (f"{PREFIX}/conversations/{{conversation_id}}/hand-back", conversations.hand_back),
        (f"{PREFIX}/conversations/{{conversation_id}}/reply", conversations.reply),
        (f"{PREFIX}/conversations/{{conversation_id}}/template", template_sending.send_template),
        (f"{PREFIX}/operators", operators.add_operator),
        (f"{PREFIX}/operators/{{operator_id}}", operators.update_operator),
        (f"{PREFIX}/operators/{{operator_id}}/remove", operators.remove_operator),
        (f"{PREFIX}/knowledge/upload", knowledge.upload),
        (f"{PREFIX}/knowledge/delete", knowledge.delete),
    ]
    router = app.router
    for path, endpoint in get:
        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            include_in_schema=False,
            route_class_override=ConsoleRoute,
        )
    for path, endpoint in post:
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            dependencies=[Depends(same_site)],
            include_in_schema=False,
            route_class_override=ConsoleRoute,
        )
    router.add_api_route(
        f"{PREFIX}/",
        console_home,
        methods=["GET", "HEAD"],
        include_in_schema=False,
        route_class_override=ConsoleRoute,
    )
    router.routes.append(
        Mount(f"{PREFIX}/static", ConsoleStatic(directory=HERE / "static"), name="console-static")
    )
    router.add_api_route(
        f"{PREFIX}/{{rest:path}}",
        nothing_here,
        methods=["GET", "POST"],
        include_in_schema=False,
        route_class_override=ConsoleRoute,
    )


async def start_console(
    app: FastAPI, store: Store, desk: OperatorDesk, template_desk: TemplateDesk, library: Library
) -> Console:
    """At start-up, before answering starts: what the pages reach, and the admin's password."""
    console: Console = app.state.console
    console.start(store, desk, template_desk, library)
    password = console.settings.console_password
    if password is not None:
        await ensure_admin(
            store.operators, console.passwords, password.get_secret_value(), console.clock()
        )
    return console
