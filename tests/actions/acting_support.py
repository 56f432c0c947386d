"""What the tool tests share: a customer's message answered, the texts sent back, and the
functions a Gemini request declares."""

from __future__ import annotations

from typing import Any

from helpers import Harness, text_payload
from strict_gemini import part


async def say(app: Harness, text: str, message_id: str) -> None:
    assert (await app.post(text_payload(text, message_id=message_id))).status_code == 200
    await app.settle()


def sent_texts(app: Harness) -> list[str]:
    return [m["text"]["body"] for m in app.fakes.sent()]


def declarations(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        d["name"]: d
        for tool in body.get("tools", [])
        for d in part(tool, "functionDeclarations") or []
    }
