"""A local fake of the Graph API and the Gemini API, served on 127.0.0.1 for process-level tests.
Messages it is sent are checked against Meta's OpenAPI description (meta_openapi.py): one it
refuses is answered as Graph would (400, code 100) and fails the test when the server stops."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from meta_openapi import GraphRequestRejected, invalid_parameter, problems, rejection

VERIFIED_NAME = "Padaria Central"  # what the fake Graph says the business number is called


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Recorded:
    """What the fake saw, in arrival order; safe to read from another thread."""

    gemini: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    read: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    # (business phone number id in the path, bearer token) of each message sent
    sent_from: list[tuple[str, str]] = field(default_factory=list)
    gemini_delay: float = 0.0  # seconds each Gemini answer takes; may be changed while running
    gemini_replies: list[dict[str, Any]] = field(default_factory=list)  # given before echoing
    rejected: list[str] = field(default_factory=list)  # messages Meta's description refuses


def build_fake(recorded: Recorded) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/models/{action}")
    async def generate(action: str, request: Request) -> JSONResponse:
        body = await request.json()
        recorded.gemini.append(body)
        recorded.headers.append(dict(request.headers))
        if recorded.gemini_delay:
            await asyncio.sleep(recorded.gemini_delay)
        if recorded.gemini_replies:
            return JSONResponse(recorded.gemini_replies.pop(0))
        question = body["contents"][-1]["parts"][0]["text"]
        return JSONResponse(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": f"**Echo:** {question}"}]},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4},
            }
        )

    @app.get("/{version}/{phone_number_id}")
    async def number(version: str, phone_number_id: str) -> JSONResponse:
        """The business number's names (`?fields=verified_name,display_phone_number`)."""
        return JSONResponse(
            {
                "verified_name": VERIFIED_NAME,
                "display_phone_number": "15550783881",
                "id": phone_number_id,
            }
        )

    @app.post("/{version}/{phone_number_id}/messages")
    async def messages(version: str, phone_number_id: str, request: Request) -> JSONResponse:
        body = await request.json()
        recorded.headers.append(dict(request.headers))
        if found := problems(body):
            recorded.rejected.append(rejection(body, found))
            return JSONResponse(invalid_parameter(found), status_code=400)
        if body.get("status") == "read":
            recorded.read.append(body)
            return JSONResponse({"success": True})
        recorded.sent.append(body)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        recorded.sent_from.append((phone_number_id, token))
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                "messages": [{"id": f"wamid.fake-{len(recorded.sent)}"}],
            }
        )

    return app


class ServedInThread:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread with its own event
    loop; `url` is its base address. A `with` block starts it and waits until it listens."""

    def __init__(self, app: Any, what: str, *, lifespan: Literal["on", "off"] = "off") -> None:
        self.port = free_port()
        self._what = what
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan=lifespan,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._what} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class FakeServer(ServedInThread):
    """The fake of Graph and Gemini, served in a background thread."""

    def __init__(self, gemini_delay: float = 0.0) -> None:
        self.recorded = Recorded(gemini_delay=gemini_delay)
        super().__init__(build_fake(self.recorded), "fake upstream server")

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self.recorded.rejected and exc[0] is None:
            raise GraphRequestRejected("\n\n".join(self.recorded.rejected))
