"""The FastAPI app: its lifespan (store, answering) and its routes (webhook, health, console)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, cast

import httpx
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import Receive, Scope, Send

from config import Settings
from domain.businesses import Businesses
from domain.delivery import rank_of
from ops.logs import configure_logging, short_hash
from ops.memory import settle_garbage_collector
from ops.metrics import Metrics
from ops.serving import bind_problem, cannot_listen_message, uvicorn_listening
from service.business_name import business_names
from service.lifespan import Services, build_lifespan
from service.startup_settings import checked, load_settings
from storage.refused_tokens import token_hash
from webhook.arrivals import Arrival
from webhook.events import StatusUpdate, WebhookEvents, parse_webhook
from webhook.signature import SIGNATURE_HEADER, verify_signature

log = logging.getLogger("main")

MAX_BODY_BYTES = 4 * 1024 * 1024  # Meta sends at most 3 MB; anything bigger is not Meta


# ---------------------------------------------------------------------------------------------
# Routes


# Async on purpose: FastAPI runs plain `def` dependencies in a thread pool, on every request.
async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]


FRONT_DOOR = (
    "This WhatsApp assistant is running: customers reach it on WhatsApp.\n"
    "Its operator console is off (CONSOLE_PASSWORD turns it on).\n"
)


async def front_door(settings: SettingsDep) -> Response:
    """`/`: the console when it is on; otherwise a line that says the service runs (nothing
    about its settings or versions: anyone may open this address)."""
    if settings.console_enabled:
        return RedirectResponse("/console", status_code=307)
    return PlainTextResponse(FRONT_DOOR)


async def health() -> dict[str, str]:
    """Liveness: the process can serve. Cheap on purpose; Render probes it often."""
    return {"status": "ok"}


async def ready(settings: SettingsDep, services: ServicesDep) -> Response:
    """Readiness: 200 only while the database answers and Meta accepts every business's token."""
    try:
        await asyncio.wait_for(services.store.db.ping(), timeout=5)
        refused = await services.store.tokens.refused()
    except Exception as exc:
        log.warning("not ready: database unavailable (%s)", type(exc).__name__)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    names = [
        business.name
        for business in settings.businesses
        if refused.get(business.phone_number_id) == token_hash(business.token)
    ]
    if names:
        reason = f"Meta refused the WhatsApp token of {', '.join(names)} (error 190)"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics_endpoint(
    request: Request, settings: SettingsDep, services: ServicesDep
) -> Response:
    """Prometheus text format; with METRICS_TOKEN set, only for `Authorization: Bearer` it."""
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}"
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
    try:
        services.metrics.backlog.set(await services.store.inbox.count_unfinished())
    except Exception as exc:
        log.warning("backlog unknown: database unavailable (%s)", type(exc).__name__)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def verify_webhook(request: Request, settings: SettingsDep) -> Response:
    """Meta's subscription handshake: echo the challenge as plain text, or refuse with 403."""
    params = request.query_params
    token = params.get("hub.verify_token", "")
    expected = settings.verify_token.get_secret_value()
    challenge = params.get("hub.challenge")
    if (
        params.get("hub.mode") == "subscribe"
        and challenge is not None
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        log.info("webhook verified")
        return PlainTextResponse(challenge)
    log.warning("webhook verification refused")
    return PlainTextResponse("Forbidden", status_code=403)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def log_events(events: WebhookEvents, businesses: Businesses) -> int:
    """Log statuses and errors (never answered); returns the messages no business has."""
    for status in events.statuses:
        business = businesses.get(status.phone_number_id)
        if business is None:
            continue
        codes = ",".join(str(e.code) for e in status.errors)
        log.log(
            logging.WARNING if status.status == "failed" else logging.INFO,
            "status %s for message %s%s",
            status.status,
            short_hash(status.id),
            f" errors {codes}" if codes else "",
            extra={"tenant": business.name},
        )
    for error in events.errors:
        log.warning("webhook error %s: %s", error.code, error.title)
    unknown = [m.phone_number_id for m in events.messages if m.phone_number_id not in businesses]
    for number_id in sorted(set(unknown)):
        log.warning(
            "ignored %d message(s) for phone number id %s, which no business has "
            "(check PHONE_NUMBER_ID or TENANTS_FILE)",
            unknown.count(number_id),
            number_id[:32],
        )
    return len(unknown)


async def apply_statuses(
    services: Services, businesses: Businesses, statuses: list[StatusUpdate]
) -> None:
    """Move the messages the service sent forward to their statuses (one statement), and count
    them; statuses of messages another app sent are ignored."""
    metrics = services.metrics
    applied = await services.store.delivery.apply(statuses)
    for event in applied:
        business = businesses.get(event.phone_number_id)
        name = business.name if business is not None else event.phone_number_id
        metrics.delivery_statuses.labels(name, event.status).inc()
        if event.status == "failed":
            metrics.delivery_failures.labels(name, str(event.error_code or "none")).inc()
    ignored = sum(1 for s in statuses if s.id and rank_of(s.status)) - len(applied)
    if ignored > 0:
        metrics.ignored_statuses.inc(ignored)


async def receive_webhook(request: Request) -> Response:
    """Size limit, signature, parse, record, 200: nothing slow happens before the answer.

    The hottest route reads app state directly rather than through `Depends`, whose
    resolution per request is a noticeable share of the web process's CPU (bench/RESULTS.md).
    """
    settings: Settings = request.app.state.settings
    services: Services = request.app.state.services
    metrics = services.metrics
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        log.warning("webhook refused: body over %d bytes", MAX_BODY_BYTES)
        metrics.webhooks.labels("too_large").inc()
        return JSONResponse({"error": "payload too large"}, status_code=413)
    secret = settings.app_secret.get_secret_value()
    if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), secret):
        log.warning("webhook refused: missing or invalid %s", SIGNATURE_HEADER)
        metrics.webhooks.labels("bad_signature").inc()
        return JSONResponse({"error": "invalid signature"}, status_code=401)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        log.warning("webhook ignored: body is not JSON (%d bytes)", len(body))
        metrics.webhooks.labels("not_json").inc()
        return JSONResponse({"status": "ignored"})
    events = parse_webhook(payload)
    businesses = settings.businesses
    unknown = log_events(events, businesses)
    if unknown:
        metrics.unknown_number.inc(unknown)
    messages = [m for m in events.messages if m.phone_number_id in businesses]
    new_ids = await services.store.recorder.record(messages)
    if new_ids:
        new = set(new_ids)
        commands = settings.command_words
        services.answering.arrived([Arrival.of(m, commands) for m in messages if m.id in new])
    statuses = [s for s in events.statuses if s.phone_number_id in businesses]
    if statuses:
        await apply_statuses(services, businesses, statuses)
    if len(new_ids) < len(messages):
        log.info("%d duplicate delivery(ies) ignored", len(messages) - len(new_ids))
    if not (events.messages or events.statuses or events.errors):
        log.info(
            "webhook had nothing to handle (object %r)",
            str(payload.get("object"))[:40]
            if isinstance(payload, dict)
            else type(payload).__name__,
        )
    metrics.webhooks_ok.inc()
    return recorded_response(len(new_ids))


def recorded_response(count: int) -> Response:
    """`{"status":"ok","recorded":N}`, the bytes JSONResponse renders, without json.dumps."""
    return Response(b'{"status":"ok","recorded":%d}' % count, media_type="application/json")


def create_app(
    settings: Settings | None = None,
    *,
    graph_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app; without `settings` they are read from the environment and `.env`
    (given ones are checked as start-up checks them: their files read, their folders probed).

    `graph_transport` replaces the network under the Graph API client (the playground
    prints what would be sent to WhatsApp instead of sending it).
    """
    settings = load_settings() if settings is None else checked(settings)
    configure_logging(settings)
    app = ServiceApp(
        title="WhatsApp Gemini assistant",
        lifespan=build_lifespan(settings, graph_transport),
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.business_names = business_names(settings)
    add_routes(app)
    if settings.console_enabled:  # off: no route under /console at all, so each one is 404
        from console.app import add_console

        add_console(app, settings)
    return app


WEBHOOK_PATH = "/webhook"


class ServiceApp(FastAPI):
    """The FastAPI app, with `POST /webhook` handed straight to its endpoint.

    Each request otherwise passes Starlette's and FastAPI's middleware layers (error pages,
    exception handlers, the body limit, an exit stack), the router's matching and the route's
    request/response wrapping before the endpoint runs, and the response back through them:
    about a fifth of the web process's CPU per webhook (bench/RESULTS.md, the profiles). None of
    them changes what the webhook answers: it reads its own body with a size limit and returns
    its own responses, and an exception it raises still becomes uvicorn's 500, logged. The route
    stays registered (the OpenAPI document, the other methods' 405) and serves every other path.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].removeprefix(scope.get("root_path", "")) == WEBHOOK_PATH
        ):
            scope["app"] = self
            response = await receive_webhook(Request(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class PlainRoute(APIRoute):
    """A route whose endpoint takes the Request and returns the Response itself.

    FastAPI's own handler resolves dependencies and validates parameters on every request
    even when the endpoint declares none, a noticeable share of the webhook's CPU. The route
    is still an APIRoute, so the OpenAPI document describes it as before.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)


def add_routes(app: FastAPI) -> None:
    """The routes, on the app itself: an included APIRouter adds a layer of matching to each
    request (FastAPI 0.16x), which the webhook route pays on every call."""
    router = app.router
    router.add_api_route("/", front_door, methods=["GET", "HEAD"], include_in_schema=False)
    router.add_api_route("/health", health, methods=["GET"])
    router.add_api_route("/ready", ready, methods=["GET"])
    router.add_api_route("/metrics", metrics_endpoint, methods=["GET"])
    router.add_api_route(
        WEBHOOK_PATH, verify_webhook, methods=["GET"], response_class=PlainTextResponse
    )
    router.add_api_route(  # ServiceApp calls it directly; here for the OpenAPI document
        WEBHOOK_PATH, receive_webhook, methods=["POST"], route_class_override=PlainRoute
    )


def __getattr__(name: str) -> FastAPI:
    """`main:app` for uvicorn, built on first use: importing this module has no side effects."""
    if name != "app":
        raise AttributeError(f"module 'main' has no attribute {name!r}")
    application = create_app()
    refuse_unusable_port()
    globals()["app"] = application
    settle_garbage_collector()  # the served app only: tests build many apps in one process
    return application


def refuse_unusable_port() -> None:
    """Stop before any start-up work (migrations, the knowledge synchronisation) when uvicorn
    could not listen where it was told: it binds only after the app's lifespan has started."""
    listening = uvicorn_listening()
    if listening is None or not listening.binds:
        return
    problem = bind_problem(listening.host, listening.port)
    if problem is not None:
        log.error("%s", cannot_listen_message(listening, problem))
        raise SystemExit(1)
