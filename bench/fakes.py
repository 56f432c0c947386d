"""A fake Graph API and Gemini API for the benchmarks, run as its own process.

    python -m bench.fakes --port 8100 --gemini-delay 2

Gemini (`POST /{version}/models/{model}:generateContent`) answers `**Echo:** <question>` after
`--gemini-delay` seconds (or, in hold mode, once `POST /_bench/release` is called, at most
`--hold-timeout` seconds later), and reports `promptTokenCount` as prompt characters / 4 (a
stand-in: the fake has no tokenizer). The Graph API (`POST /{version}/{phone-number-id}/messages`)
accepts read receipts and text messages and timestamps each text message on receipt (wall clock).

Control routes, for the benchmark process only: `GET /_bench/stats`, `GET /_bench/sent`,
`GET /_bench/prompts`, `GET /_bench/wait_sent?n=&timeout=`, `POST /_bench/config?delay=&hold=`,
`POST /_bench/release`, `POST /_bench/reset`. It is a plain ASGI app so that the fake costs
little CPU beside the service on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class FakeState:
    """What the fake was told and what it saw since the last reset."""

    delay: float = 0.0
    hold: bool = False
    hold_timeout: float = 120.0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    sent_event: asyncio.Event = field(default_factory=asyncio.Event)
    gemini_requests: int = 0
    gemini_in_flight: int = 0
    gemini_in_flight_peak: int = 0
    read: int = 0
    # (wall-clock time of receipt, recipient, text) of every text message sent.
    sent: list[tuple[float, str, str]] = field(default_factory=list)
    # (question, prompt characters incl. the system instruction, number of contents).
    prompts: list[tuple[str, int, int]] = field(default_factory=list)

    def reset(self) -> None:
        self.release.set()  # let anything still held go before forgetting it
        self.release = asyncio.Event()
        self.gemini_requests = self.gemini_in_flight_peak = self.read = 0
        self.sent = []
        self.prompts = []


def _text_parts(content: Any) -> list[str]:
    if not isinstance(content, dict):
        return []
    parts = content.get("parts") or []
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, data: Any, status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FakeUpstreams:
    """The ASGI app of the fake; one instance per process."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST" and path.endswith(":generateContent"):
            await self._gemini(receive, send)
        elif method == "POST" and path.endswith("/messages"):
            await self._graph(receive, send)
        elif path == "/health":
            await _respond(send, {"status": "ok"})
        elif path.startswith("/_bench/"):
            query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
            await self._control(path.removeprefix("/_bench/"), query, send)
        else:
            await _respond(send, {"error": {"code": 404, "message": "not faked"}}, 404)

    async def _gemini(self, receive: Receive, send: Send) -> None:
        state = self.state
        body = json.loads(await _read_body(receive))
        contents = body.get("contents") or []
        system = body.get("systemInstruction") or body.get("system_instruction")
        texts = [t for c in contents for t in _text_parts(c)] + _text_parts(system)
        chars = sum(len(t) for t in texts)
        last = _text_parts(contents[-1]) if contents else []
        question = last[-1] if last else ""
        state.gemini_requests += 1
        state.prompts.append((question, chars, len(contents)))
        state.gemini_in_flight += 1
        state.gemini_in_flight_peak = max(state.gemini_in_flight_peak, state.gemini_in_flight)
        try:
            if state.hold:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.release.wait(), state.hold_timeout)
            elif state.delay > 0:
                await asyncio.sleep(state.delay)
        finally:
            state.gemini_in_flight -= 1
        answer = f"**Echo:** {question}"
        await _respond(
            send,
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": answer}]},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": chars // 4,
                    "candidatesTokenCount": len(answer) // 4,
                    "totalTokenCount": chars // 4 + len(answer) // 4,
                },
                "modelVersion": "bench-fake",
            },
        )

    async def _graph(self, receive: Receive, send: Send) -> None:
        state = self.state
        raw = await _read_body(receive)
        received = time.time()
        body = json.loads(raw)
        if body.get("status") == "read":
            state.read += 1
            await _respond(send, {"success": True})
            return
        text = body.get("text") or {}
        state.sent.append((received, str(body.get("to")), str(text.get("body", ""))))
        state.sent_event.set()
        await _respond(
            send,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                "messages": [{"id": f"wamid.fake-{len(state.sent)}"}],
            },
        )

    async def _control(self, action: str, query: dict[str, str], send: Send) -> None:
        state = self.state
        if action == "stats":
            await _respond(
                send,
                {
                    "gemini": state.gemini_requests,
                    "gemini_in_flight": state.gemini_in_flight,
                    "gemini_in_flight_peak": state.gemini_in_flight_peak,
                    "read": state.read,
                    "sent": len(state.sent),
                },
            )
        elif action == "sent":
            await _respond(send, [{"t": t, "to": to, "text": text} for t, to, text in state.sent])
        elif action == "prompts":
            await _respond(send, [{"q": q, "chars": c, "contents": n} for q, c, n in state.prompts])
        elif action == "wait_sent":
            wanted = int(query.get("n", "1"))
            deadline = time.monotonic() + min(float(query.get("timeout", "10")), 60.0)
            while len(state.sent) < wanted and time.monotonic() < deadline:
                state.sent_event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.sent_event.wait(), deadline - time.monotonic())
            await _respond(send, {"sent": len(state.sent)})
        elif action == "config":
            if "delay" in query:
                state.delay = float(query["delay"])
            if "hold" in query:
                state.hold = query["hold"] == "1"
            await _respond(send, {"delay": state.delay, "hold": state.hold})
        elif action == "release":
            state.release.set()
            await _respond(send, {"released": True})
        elif action == "reset":
            state.reset()
            await _respond(send, {"reset": True})
        else:
            await _respond(send, {"error": "unknown control"}, 404)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gemini-delay", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--hold", action="store_true", help="hold answers until released")
    parser.add_argument("--hold-timeout", type=float, default=120.0)
    args = parser.parse_args()
    state = FakeState(delay=args.gemini_delay, hold=args.hold, hold_timeout=args.hold_timeout)
    uvicorn.run(
        FakeUpstreams(state),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
