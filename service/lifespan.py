"""The service assembled: what the web process opens at start-up, in order, and closes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from fastapi import FastAPI

from config import Settings
from domain.businesses import BusinessNames
from ops.metrics import Metrics
from ops.scheduling import WEB_SLICE_SECONDS, ask_for_slice
from ops.serving import uvicorn_listening
from service.business_name import learning_name
from service.processes import WorkerProcesses
from storage.store import Store
from webhook.arrivals import Arrival

if TYPE_CHECKING:  # the web process imports the answering side only when it answers itself
    from answering.dispatcher import Dispatcher
    from documents.library import Library

log = logging.getLogger("main")


class Answering(Protocol):
    def arrived(self, arrivals: Sequence[Arrival]) -> None: ...


class NobodyToWake:
    """Answering runs in processes the operator started (EXTERNAL_WORKERS): they poll, and
    mark a burst read when they claim it."""

    def arrived(self, arrivals: Sequence[Arrival]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    answering: Answering  # told about every newly recorded message
    metrics: Metrics
    dispatcher: Dispatcher | None = None  # the in-process one when WORKER_PROCESSES=0

    @property
    def inline_dispatcher(self) -> Dispatcher:
        """The in-process Dispatcher (tests and tools run with WORKER_PROCESSES=0)."""
        if self.dispatcher is None:
            raise RuntimeError("answering runs in other processes (WORKER_PROCESSES > 0)")
        return self.dispatcher


def build_lifespan(
    settings: Settings, graph_transport: httpx.AsyncBaseTransport | None = None
) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics: Metrics = app.state.metrics
        external = settings.external_workers and graph_transport is None
        processes = settings.worker_processes > 0 and graph_transport is None and not external
        if processes or external:  # this process only acknowledges: let it in sooner
            ask_for_slice(WEB_SLICE_SECONDS)  # before any thread starts, so that they inherit it
        store = await Store.open(
            settings.database_url,
            migrate=settings.auto_migrate,
            checkpoints=not (processes or external),
            phone_number_id=settings.phone_number_id,
        )
        try:
            async with AsyncExitStack() as stack:
                app.state.library = await open_library(settings, store, stack)
                names: BusinessNames = app.state.business_names
                if settings.console_enabled:  # the admin exists before anything is answered
                    if graph_transport is None:  # a stand-in for Meta has no name to give
                        await stack.enter_async_context(learning_name(settings, names))
                    await open_console(app, settings, store, metrics, stack, graph_transport)
                if external:
                    services = Services(store, NobodyToWake(), metrics)
                    log.info("answering is left to `python -m service.worker` processes")
                elif processes:
                    services = await start_worker_processes(settings, store, metrics, stack)
                else:
                    from service.answering import running_answering

                    dispatcher = await stack.enter_async_context(
                        running_answering(
                            settings, store, metrics, graph_transport=graph_transport, names=names
                        )
                    )
                    services = Services(store, dispatcher, metrics, dispatcher)
                app.state.services = services
                log.info(
                    "ready: model %s, Graph %s, %s database, %d business(es): %s",
                    settings.gemini_model,
                    settings.graph_api_version,
                    store.engine.dialect.name,
                    len(settings.businesses),
                    ", ".join(settings.businesses.names()),
                )
                if settings.console_enabled:
                    log_console_address(settings)
                yield
        finally:
            await store.close()
            log.info("stopped")

    return lifespan


def log_console_address(settings: Settings) -> None:
    """Where a person opens the console and the name they sign in with (never the password)."""
    from console.sessions import ADMIN

    listening = uvicorn_listening()
    if settings.public_url:
        where = f"{settings.public_url}/console"
    elif listening is not None:
        where = f"{listening.local_url}/console"
    else:
        where = "/console of this service"
    log.info("console at %s (sign in as %s, with the password in CONSOLE_PASSWORD)", where, ADMIN)


async def open_library(settings: Settings, store: Store, stack: AsyncExitStack) -> Library | None:
    """The businesses' documents, when this deployment may have some (synchronised at start-up
    in the background with KNOWLEDGE_SYNC=startup); None otherwise."""
    from service.knowledge import running_library

    return await stack.enter_async_context(running_library(settings, store))


async def open_console(
    app: FastAPI,
    settings: Settings,
    store: Store,
    metrics: Metrics,
    stack: AsyncExitStack,
    graph_transport: httpx.AsyncBaseTransport | None,
) -> None:
    """The console's pages over the store and the library, its actions (replies, templates)
    through the businesses' numbers; shutdown waits for the documents an operator is still
    uploading."""
    from answering.templates import TemplateDesk
    from console.app import start_console
    from service.answering import operator_desk

    library = app.state.library
    if library is None:  # running_library always opens one while the console is on
        raise RuntimeError("the console needs the documents' library")
    desk = await stack.enter_async_context(
        operator_desk(settings, store, metrics, graph_transport=graph_transport)
    )
    templates = TemplateDesk(store, desk.graphs, desk)
    console = await start_console(app, store, desk, templates, library)
    stack.push_async_callback(console.uploads.wait)


async def start_worker_processes(
    settings: Settings, store: Store, metrics: Metrics, stack: AsyncExitStack
) -> Services:
    if store.is_sqlite:  # the file is this service's: what its last run held is free again
        from answering.dispatcher import resume_abandoned

        await resume_abandoned(store)
    processes = WorkerProcesses(settings, metrics)
    stack.push_async_callback(processes.stop, settings.shutdown_grace_seconds)
    await processes.start()
    return Services(store, processes, metrics)
