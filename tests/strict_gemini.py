"""Gemini 3's rules for function calls, as a fake at the HTTP level keeps them: calls with ids
and thought signatures, and a replayed call without its signature refused with 400."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from respx_upstreams import gemini_answer

# Bytes whose base64 differs between the standard and the URL-safe alphabets ('+', '/').
SIGNATURE = base64.b64encode(b"\xfb\xef\xbe thought signature \xff\xfe").decode()


def decoded(signature: str) -> bytes:
    """A thought signature's bytes, whichever base64 alphabet carried them."""
    standard = signature.replace("-", "+").replace("_", "/")
    return base64.b64decode(standard + "=" * (-len(standard) % 4))


def part(item: dict[str, Any], camel: str) -> Any:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return item.get(camel, item.get(snake))


@dataclass
class StrictGemini:
    """Gemini 3 as far as function calls go: each call it makes has an id, the first of a turn a
    thought signature; a later request that replays a call without that signature, or does not
    answer each call under its id and name, is refused with 400 as Gemini refuses it."""

    issued: dict[str, bytes] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    refused: list[str] = field(default_factory=list)

    def calls(
        self, *calls: tuple[str, dict[str, Any]]
    ) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
        """A reply that calls these functions (in parallel when several)."""
        parts: list[dict[str, Any]] = []
        for index, (name, args) in enumerate(calls):
            call_id = f"call-{next(self.ids)}"
            item: dict[str, Any] = {"functionCall": {"id": call_id, "name": name, "args": args}}
            if index == 0:
                item["thoughtSignature"] = SIGNATURE
                self.issued[call_id] = decoded(SIGNATURE)
            parts.append(item)
        body = {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 6},
        }
        return self.checked(httpx.Response(200, json=body))

    def text(self, text: str) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
        return self.checked(gemini_answer(text))

    def checked(
        self, response: httpx.Response
    ) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
        async def reply(request: httpx.Request) -> httpx.Response:
            problem = self.problem(json.loads(request.content))
            if problem is None:
                return response
            self.refused.append(problem)
            error = {"code": 400, "message": problem, "status": "INVALID_ARGUMENT"}
            return httpx.Response(400, json={"error": error})

        return reply

    def problem(self, body: dict[str, Any]) -> str | None:
        contents = body["contents"]
        for index, content in enumerate(contents):
            calls = [p for p in content["parts"] if part(p, "functionCall") is not None]
            if content.get("role") != "model" or not calls:
                continue
            first = calls[0]
            signature = part(first, "thoughtSignature")
            call_id = part(first, "functionCall").get("id")
            if signature is None or decoded(signature) != self.issued.get(call_id):
                return (
                    "Function call is missing a thought_signature in functionCall parts. "
                    f"This is required for tools to work correctly (position {index})"
                )
            answers = contents[index + 1]["parts"] if index + 1 < len(contents) else []
            responses = [part(p, "functionResponse") for p in answers]
            asked = [
                (part(c, "functionCall")["id"], part(c, "functionCall")["name"]) for c in calls
            ]
            if [(r["id"], r["name"]) for r in responses if r] != asked:
                return (
                    "Please ensure that the number of function response parts is equal to "
                    "the number of function call parts of the function call turn."
                )
        return None
