"""A terminal chat with the assistant through the real pipeline, WhatsApp simulated (make chat)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import httpx
from dotenv import dotenv_values
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from answering.dispatcher import Dispatcher
from config import Settings
from domain.businesses import TenantSettings, tenant_entries
from main import create_app
from service.startup_settings import checked
from tools import simulate

# Harmless stand-ins for the Meta values: WhatsApp is simulated, so only Gemini is real.
STAND_INS = {
    "whatsapp_token": "playground-whatsapp-token",
    "verify_token": "playground-verify-token",
    "app_secret": "playground-app-secret",
    "phone_number_id": "100000000000001",
}
USER_WA_ID = "15550000001"
DEFAULT_DATABASE_URL = "sqlite:///./data/playground.db"
PROMPT = "you> "
ASSISTANT = "assistant> "
QUIT = "/quit"
NO_KEY_MESSAGE = (
    "playground: set GEMINI_API_KEY (environment or .env); "
    "get one at https://aistudio.google.com/apikey"
)


def business_settings(tenants_file: str, tenant: str) -> dict[str, Any]:
    """The named business's own settings from the tenants file, as service-wide settings.

    Only its prompt and overrides: its number and token stay stand-ins, so no token is needed.
    """
    path = Path(tenants_file)
    entries = [e for e in tenant_entries(path) if isinstance(e, dict) and e.get("name") == tenant]
    if not entries:
        raise ValueError(f"no business named {tenant!r} in {path}")
    entry = TenantSettings.model_validate({**entries[0], "whatsapp_token_env": "UNUSED"})
    values = entry.model_dump(
        exclude={"name", "phone_number_id", "whatsapp_token_env"}, exclude_none=True
    )
    for name in ("system_prompt_file", "knowledge_dir", "tools_file"):
        if name in values:
            values[name] = path.parent / values[name]
    return values


def build_settings() -> Settings:
    """Settings from the environment and `.env`, with the Meta values replaced by stand-ins.

    TENANT=<name> (with TENANTS_FILE) talks to that business: its prompt and overrides.
    """
    values: dict[str, Any] = {
        **STAND_INS,
        "database_url": os.environ.get("PLAYGROUND_DATABASE_URL") or DEFAULT_DATABASE_URL,
        "log_level": os.environ.get("PLAYGROUND_LOG_LEVEL") or "WARNING",
        "auto_migrate": True,  # its own database: always bring it up to date
        "tenants_file": None,  # the businesses' tokens are not needed here
        # Answered in this process, whatever WORKER_PROCESSES or EXTERNAL_WORKERS say: the
        # simulated WhatsApp lives here, and the chat waits for each answer (said at start).
        "worker_processes": 0,
        "external_workers": False,
    }
    tenant = os.environ.get("TENANT", "")
    if tenant:
        tenants_file = os.environ.get("TENANTS_FILE") or dotenv_values(".env").get("TENANTS_FILE")
        try:
            values.update(business_settings(tenants_file or "", tenant))
        except ValueError as exc:
            print(f"playground: TENANT={tenant}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    try:
        return checked(Settings(**values))
    except ValidationError as error:
        names = {str(problem["loc"][0]) for problem in error.errors(include_input=False)}
        if "gemini_api_key" in names:
            print(NO_KEY_MESSAGE, file=sys.stderr)
        else:
            print(f"playground: invalid settings: {', '.join(sorted(names))}", file=sys.stderr)
        raise SystemExit(1) from None
    except ValueError as exc:  # a file or folder the settings name
        print(f"playground: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


class FakeWhatsApp:
    """Answers Graph API calls as Meta would, and shows each sent text on the output stream."""

    def __init__(self, output: TextIO) -> None:
        self._output = output
        self.sent = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = json.loads(request.content or b"{}")
        if body.get("status") == "read":
            return httpx.Response(200, json={"success": True})
        if body.get("type") not in ("text", "interactive"):
            error = {"message": "the playground only shows text", "type": "OAuthException"}
            return httpx.Response(400, json={"error": {**error, "code": 100}})
        self.sent += 1
        shown = body["text"]["body"] if body["type"] == "text" else interactive_text(body)
        self._output.write(f"{ASSISTANT}{shown}\n")
        self._output.flush()
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                "messages": [{"id": f"wamid.playground-{self.sent}"}],
            },
        )


def interactive_text(body: dict[str, Any]) -> str:
    """Reply buttons or a list as the terminal shows them: the text, then `[option]` each
    (type an option's title to choose it, as tapping it would send)."""
    interactive = body["interactive"]
    action = interactive["action"]
    if interactive["type"] == "button":
        titles = [button["reply"]["title"] for button in action["buttons"]]
    else:
        titles = [row["title"] for section in action["sections"] for row in section["rows"]]
    text = str(interactive["body"]["text"])
    return text + "\n" + "  ".join(f"[{title}]" for title in titles)


async def read_line(input_stream: TextIO, output_stream: TextIO) -> str | None:
    """The next line, stripped; None at end of input or `/quit`."""
    if input_stream.isatty():
        output_stream.write(PROMPT)
        output_stream.flush()
    line = await readline_in_thread(input_stream)
    if not line or line.strip() == QUIT:
        return None
    return line.strip()


def readline_in_thread(input_stream: TextIO) -> asyncio.Future[str]:
    """`readline` in a daemon thread: a Ctrl-C need not wait for a line that never comes
    (asyncio's default executor would keep the process alive until Enter)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not future.done():
            future.set_result(line)

    def read() -> None:
        line = input_stream.readline()
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody waits
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="playground-input", daemon=True).start()
    return future


async def send_line(client: httpx.AsyncClient, settings: Settings, text: str) -> int:
    """Post `text` to /webhook as a signed Meta text webhook; returns the HTTP status."""
    payload = simulate.build_payload(
        text, phone_number_id=next(iter(settings.businesses)).phone_number_id, wa_id=USER_WA_ID
    )
    body = simulate.encode(payload)
    headers = simulate.signed_headers(body, settings.app_secret.get_secret_value())
    response = await client.post("/webhook", content=body, headers=headers)
    return response.status_code


def describe(settings: Settings, tenant: str | None = None) -> str:
    """What the chat runs, said before it starts: the business, the model, WhatsApp simulated,
    answering in this process without worker processes, and the database (no password)."""
    business = (
        f"{tenant!r} of TENANTS_FILE (its prompt and overrides)"
        if tenant
        else "your settings' own (SYSTEM_PROMPT); TENANT=<name> picks one of TENANTS_FILE"
    )
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    return (
        f"Business: {business}\n"
        f"Model: {settings.gemini_model} (Gemini is called for real)\n"
        "WhatsApp: simulated; nothing goes to Meta, replies print here (text, buttons, lists)\n"
        "Answering: in this process, no worker processes (WORKER_PROCESSES is ignored)\n"
        f"Database: {database} (PLAYGROUND_DATABASE_URL)\n"
        f"Type {QUIT} to leave.\n"
    )


async def chat(
    settings: Settings, input_stream: TextIO, output_stream: TextIO, tenant: str | None = None
) -> None:
    """Read lines, deliver each through the real app, print the answers as WhatsApp shows them."""
    output_stream.write(describe(settings, tenant))
    output_stream.flush()
    fake = FakeWhatsApp(output_stream)
    app = create_app(settings, graph_transport=httpx.MockTransport(fake.handle))
    async with app.router.lifespan_context(app):
        worker: Dispatcher = app.state.services.inline_dispatcher
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://playground") as client:
            while (line := await read_line(input_stream, output_stream)) is not None:
                if not line:
                    continue
                status = await send_line(client, settings, line)
                if status != 200:
                    output_stream.write(f"(the webhook answered {status})\n")
                    continue
                await worker.wait_idle()


def main() -> int:
    """Entry point of `make chat`."""
    settings = build_settings()
    try:
        asyncio.run(chat(settings, sys.stdin, sys.stdout, os.environ.get("TENANT") or None))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
