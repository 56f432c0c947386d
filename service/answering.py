"""The answering side put together: upstream clients, pipeline and dispatcher, opened and closed."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx

from actions.calls import ToolCaller, tools_http_client
from actions.mcp_tools import McpTools
from answering.dispatcher import Dispatcher
from answering.notify import Notifier
from answering.operators import OperatorDesk
from answering.pipeline import Pipeline
from config import Settings
from domain.businesses import BusinessNames
from llm import Gemini, close_gemini_http, gemini_aiohttp_session, gemini_http_client
from ops.metrics import Metrics
from service.business_name import business_names, learning_name
from storage.store import Store
from whatsapp import GraphClient, graph_http_client

if TYPE_CHECKING:
    import aiohttp


def new_owner() -> str:
    """This process's name on the claims it takes: host, pid and a random suffix."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def graph_clients(
    settings: Settings, http: httpx.AsyncClient, metrics: Metrics
) -> dict[str, GraphClient]:
    """One Graph client per business number and token, over one shared set of connections."""
    return {
        business.phone_number_id: GraphClient(
            http,
            version=settings.graph_api_version,
            phone_number_id=business.phone_number_id,
            token=business.token,
            backoff=settings.backoff(settings.graph_max_attempts),
            observer=metrics.observe_graph,
        )
        for business in settings.businesses
    }


@contextlib.asynccontextmanager
async def operator_desk(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    *,
    graph_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[OperatorDesk]:
    """The console's actions with their own Graph clients (the web process answers nothing)."""
    http = graph_http_client(
        settings.graph_api_base_url,
        settings.graph_timeout_seconds,
        library=settings.graph_transport,
        transport=graph_transport,
    )
    try:
        yield OperatorDesk(settings, store, graph_clients(settings, http, metrics))
    finally:
        await http.aclose()


def gemini_client_for(settings: Settings) -> httpx.AsyncClient | aiohttp.ClientSession:
    """The HTTP client under Gemini's answers, by GEMINI_TRANSPORT."""
    connections = settings.max_concurrency + 4
    if settings.gemini_transport == "httpx":
        return gemini_http_client(settings.gemini_timeout_seconds, connections)
    return gemini_aiohttp_session(
        settings.gemini_timeout_seconds, connections, settings.gemini_base_url
    )


@contextlib.asynccontextmanager
async def running_answering(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    *,
    graph_transport: httpx.AsyncBaseTransport | None = None,
    resume: bool = True,
    names: BusinessNames | None = None,
) -> AsyncIterator[Dispatcher]:
    """A started Dispatcher with its own Graph and Gemini clients; stopped and closed on exit.

    `graph_transport` replaces the network under the Graph API client (the playground
    prints what would be sent to WhatsApp instead of sending it). `names`: the businesses'
    names as the web process learns them; None: this process learns them itself if its
    handoff notifications need them.
    """
    graph_http = graph_http_client(
        settings.graph_api_base_url,
        settings.graph_timeout_seconds,
        library=settings.graph_transport,
        transport=graph_transport,
    )
    gemini_http = gemini_client_for(settings)
    gemini = Gemini(
        api_key=settings.gemini_api_key.get_secret_value(),
        model=settings.gemini_model,
        http=gemini_http,
        base_url=settings.gemini_base_url,
        timeout_seconds=settings.gemini_timeout_seconds,
        backoff=settings.backoff(settings.gemini_max_attempts),
    )
    graphs = graph_clients(settings, graph_http, metrics)
    tools_http = (  # the businesses' own APIs, when any business has tools
        tools_http_client(settings.max_concurrency + 4)
        if any(business.tools for business in settings.businesses)
        else None
    )
    mcp = (  # the businesses' MCP servers, when any business names one
        McpTools(metrics, settings.max_concurrency + 4)
        if any(business.mcp for business in settings.businesses)
        else None
    )
    notify_http = (
        httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        if settings.console_enabled and settings.handoff_webhook_url
        else None
    )
    learning = names is None and notify_http is not None and graph_transport is None
    names = names or business_names(settings)
    pipeline = Pipeline(
        settings=settings,
        store=store,
        graphs=graphs,
        gemini=gemini,
        metrics=metrics,
        owner=new_owner(),
        notifier=Notifier(notify_http, settings.handoff_webhook_url or "", names)
        if notify_http
        else None,
        caller=ToolCaller(tools_http, metrics) if tools_http else None,
        mcp=mcp,
    )
    dispatcher = Dispatcher(settings=settings, store=store, pipeline=pipeline)
    metrics.in_flight.set_function(lambda: dispatcher.in_flight)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if learning:
                await stack.enter_async_context(learning_name(settings, names))
            await dispatcher.start(resume=resume)
            yield dispatcher
    finally:
        await dispatcher.stop(settings.shutdown_grace_seconds)
        await gemini.aclose()
        await close_gemini_http(gemini_http)
        await graph_http.aclose()
        if notify_http is not None:
            await notify_http.aclose()
        if tools_http is not None:
            await tools_http.aclose()
        if mcp is not None:
            await mcp.aclose()
