"""The other baselines of the acknowledgement benchmark: pywa's own FastAPI webhook, both kinds.

pywa (https://github.com/david-lev/pywa) is the WhatsApp Cloud API framework a Python developer
would otherwise reach for. It comes as a synchronous client (`pywa`, its README's first example)
and an asynchronous one (`pywa_async`); each is served by uvicorn with the service's flags
(`bench.pywa_app:app`, `bench.pywa_app:async_app`), checks the same signature with the same app
secret, parses each update into its types and hands it to a handler that does nothing: what a
webhook costs in that framework before any answering. Neither keeps anything: no message is
durable before its 200, where the service's are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pywa.client import WhatsApp
from pywa.types.message import Message
from pywa_async.client import WhatsApp as AsyncWhatsApp
from pywa_async.types.message import Message as AsyncMessage

from bench.servers import APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN, WHATSAPP_TOKEN


def served(client_class: type[Any]) -> tuple[FastAPI, Any]:
    """A FastAPI app with /health and pywa's POST /webhook, and pywa's client on it."""
    app = FastAPI(docs_url=None, redoc_url=None)
    app.get("/health")(health)
    client = client_class(
        phone_id=PHONE_NUMBER_ID,
        token=WHATSAPP_TOKEN,
        server=app,
        webhook_endpoint="/webhook",
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
    )
    return app, client


async def health() -> dict[str, str]:
    return {"status": "ok"}


def received(client: WhatsApp, message: Message) -> None:
    """Nothing: the baseline measures pywa's webhook, not an answer."""


async def received_async(client: AsyncWhatsApp, message: AsyncMessage) -> None:
    """Nothing, as `received`."""


app, whatsapp = served(WhatsApp)
async_app, async_whatsapp = served(AsyncWhatsApp)
whatsapp.on_message()(received)
async_whatsapp.on_message()(received_async)
