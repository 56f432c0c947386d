"""The name of the business of PHONE_NUMBER_ID as Meta verified it, asked in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from config import Settings
from domain.businesses import BusinessNames
from whatsapp import GraphAPIError, GraphClient, graph_http_client

log = logging.getLogger(__name__)

ASK_TIMEOUT_SECONDS = 30.0  # retries included; meanwhile, and after a failure, no name is shown


def business_names(settings: Settings) -> BusinessNames:
    """The names people see; the business of PHONE_NUMBER_ID's is BUSINESS_NAME or to learn."""
    default = settings.businesses.get(settings.phone_number_id or "")
    return BusinessNames(default, settings.business_name)


async def ask_meta(names: BusinessNames, graph: GraphClient, seconds: float) -> None:
    """Learn the number's verified name (else its display number); a failure costs only that."""
    try:
        async with asyncio.timeout(seconds):
            found = await graph.number_names()
    except (GraphAPIError, TimeoutError) as exc:
        log.warning(
            "Meta did not say the business's name (%s): set BUSINESS_NAME to show one",
            "no answer in time" if isinstance(exc, TimeoutError) else exc,
        )
        return
    except Exception:  # a background task: nobody else would see it
        log.exception("asking Meta for the business's name failed")
        return
    names.learn(found.verified_name, found.display_phone_number)
    if not (found.verified_name or found.display_phone_number):
        log.warning("Meta gave no name for the business number: set BUSINESS_NAME to show one")


@contextlib.asynccontextmanager
async def learning_name(
    settings: Settings,
    names: BusinessNames,
    *,
    seconds: float = ASK_TIMEOUT_SECONDS,
) -> AsyncIterator[None]:
    """While inside, Meta is asked for the name BUSINESS_NAME does not give, for `seconds` at
    most (start-up never waits for the answer); the question is dropped on the way out."""
    business = names.to_learn
    if business is None:
        yield
        return

    async def ask() -> None:
        http = graph_http_client(
            settings.graph_api_base_url,
            settings.graph_timeout_seconds,
            library=settings.graph_transport,
            max_connections=1,
        )
        try:
            graph = GraphClient(
                http,
                version=settings.graph_api_version,
                phone_number_id=business.phone_number_id,
                token=business.token,
                backoff=settings.backoff(settings.graph_max_attempts),
            )
            await ask_meta(names, graph, seconds)
        finally:
            await http.aclose()

    task = asyncio.create_task(ask(), name="business-name")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)
