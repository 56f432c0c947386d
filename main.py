"""The FastAPI app: lifespan wiring of clients, store and worker; webhook and health routes."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, cast

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pythonjsonlogger.json import JsonFormatter

from config import Settings, load_settings
from llm import Gemini
from metrics import Metrics
from store import Store
from whatsapp import (
    SIGNATURE_HEADER,
    GraphClient,
    WebhookEvents,
    graph_http_client,
    parse_webhook,
    short_hash,
    verify_signature,
)
from worker import Worker

log = logging.getLogger("main")

MAX_BODY_BYTES = 4 * 1024 * 1024  # Meta sends at most 3 MB; anything bigger is not Meta


# ---------------------------------------------------------------------------------------------
# Logging


class RedactQuerySecrets(logging.Filter):
    """Uvicorn's access log prints query strings, and Meta's handshake carries the verify token."""

    _pattern = re.compile(r"(?i)([?&][^=&\s]*(?:token|key|secret|signature)[^=&\s]*=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI copy of the message
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._pattern.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = self._pattern.sub(r"\1***", record.msg)
        return True


def configure_logging(settings: Settings) -> None:
    """One handler on the root logger, in the chosen format; uvicorn's loggers feed into it."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactQuerySecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    # Libraries that log what must not be logged, even at DEBUG: httpx prints URLs (media URLs
    # carry signed query strings) and aiosqlite prints every SQL statement with its parameters.
    for name in ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine", "google_genai"):
        logging.getLogger(name).setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------
# Services the lifespan opens and closes


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    worker: Worker
    metrics: Metrics


# Async on purpose: FastAPI runs plain `def` dependencies in a thread pool, on every request.
async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


async def get_metrics(request: Request) -> Metrics:
    return cast(Metrics, request.app.state.metrics)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def build_lifespan(
    settings: Settings, graph_transport: httpx.AsyncBaseTransport | None = None
) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics: Metrics = app.state.metrics
        store = await Store.open(settings.database_url, migrate=settings.auto_migrate)
        graph_http = graph_http_client(
            settings.graph_api_base_url,
            settings.whatsapp_token.get_secret_value(),
            settings.graph_timeout_seconds,
            transport=graph_transport,
        )
        gemini_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.gemini_timeout_seconds + 5, connect=10.0),
            limits=httpx.Limits(max_connections=settings.max_concurrency + 4),
        )
        gemini = Gemini(
            api_key=settings.gemini_api_key.get_secret_value(),
            model=settings.gemini_model,
            http=gemini_http,
            base_url=settings.gemini_base_url,
            timeout_seconds=settings.gemini_timeout_seconds,
            max_attempts=settings.gemini_max_attempts,
            base_delay=settings.retry_base_delay_seconds,
            max_delay=settings.retry_max_delay_seconds,
        )
        graph = GraphClient(
            graph_http,
            version=settings.graph_api_version,
            phone_number_id=settings.phone_number_id,
            max_attempts=settings.graph_max_attempts,
            base_delay=settings.retry_base_delay_seconds,
            max_delay=settings.retry_max_delay_seconds,
            observer=metrics.observe_graph,
        )
        worker = Worker(settings=settings, store=store, graph=graph, gemini=gemini, metrics=metrics)
        metrics.in_flight.set_function(lambda: worker.in_flight)
        app.state.services = Services(store=store, worker=worker, metrics=metrics)
        await worker.start()
        log.info(
            "ready: model %s, Graph %s, %s database",
            settings.gemini_model,
            settings.graph_api_version,
            store.engine.dialect.name,
        )
        try:
            yield
        finally:
            await worker.stop(settings.shutdown_grace_seconds)
            await gemini.aclose()
            await gemini_http.aclose()
            await graph_http.aclose()
            await store.close()
            log.info("stopped")

    return lifespan


# ---------------------------------------------------------------------------------------------
# Routes

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process can serve. Cheap on purpose; Render probes it often."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep) -> Response:
    """Readiness: 200 only while the database answers."""
    try:
        await asyncio.wait_for(services.store.ping(), timeout=5)
    except Exception as exc:
        log.warning("not ready: database unavailable (%s)", type(exc).__name__)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
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
        services.metrics.backlog.set(await services.store.count_unfinished())
    except Exception as exc:
        log.warning("backlog unknown: database unavailable (%s)", type(exc).__name__)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/webhook", response_class=PlainTextResponse)
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


def log_events(events: WebhookEvents, phone_number_id: str) -> None:
    """Statuses and errors are only logged; they are never answered."""
    for status in events.statuses:
        if status.phone_number_id != phone_number_id:
            continue
        codes = ",".join(str(e.code) for e in status.errors)
        log.log(
            logging.WARNING if status.status == "failed" else logging.INFO,
            "status %s for message %s%s",
            status.status,
            short_hash(status.id),
            f" errors {codes}" if codes else "",
        )
    for error in events.errors:
        log.warning("webhook error %s: %s", error.code, error.title)
    foreign = sum(1 for m in events.messages if m.phone_number_id != phone_number_id)
    if foreign:
        log.info("ignored %d message(s) for another phone number id", foreign)


@router.post("/webhook")
async def receive_webhook(
    request: Request, settings: SettingsDep, services: ServicesDep, metrics: MetricsDep
) -> Response:
    """Size limit, signature, parse, record, 200: nothing slow happens before the answer."""
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
    log_events(events, settings.phone_number_id)
    messages = [m for m in events.messages if m.phone_number_id == settings.phone_number_id]
    new_ids = await services.store.record_messages(messages)
    if new_ids:
        services.worker.notify()
    if len(new_ids) < len(messages):
        log.info("%d duplicate delivery(ies) ignored", len(messages) - len(new_ids))
    if not (events.messages or events.statuses or events.errors):
        log.info(
            "webhook had nothing to handle (object %r)",
            str(payload.get("object"))[:40]
            if isinstance(payload, dict)
            else type(payload).__name__,
        )
    metrics.webhooks.labels("ok").inc()
    return JSONResponse({"status": "ok", "recorded": len(new_ids)})


def create_app(
    settings: Settings | None = None, *, graph_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app; without `settings` they are read from the environment and `.env`.

    `graph_transport` replaces the network under the Graph API client (the playground
    prints what would be sent to WhatsApp instead of sending it).
    """
    settings = settings or load_settings()
    configure_logging(settings)
    app = FastAPI(
        title="WhatsApp Gemini assistant",
        lifespan=build_lifespan(settings, graph_transport),
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.include_router(router)
    return app


def __getattr__(name: str) -> FastAPI:
    """`main:app` for uvicorn, built on first use: importing this module has no side effects."""
    if name != "app":
        raise AttributeError(f"module 'main' has no attribute {name!r}")
    application = create_app()
    globals()["app"] = application
    return application
