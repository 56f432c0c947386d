"""What the tests of message kinds share: a media message's payload, a PDF's bytes, the text
Gemini was last asked, the texts sent."""

from __future__ import annotations

import copy
from typing import Any

from helpers import Harness, load_payload
from respx_upstreams import FakeUpstreams

PDF = b"%PDF-1.7\n" + b"price list" * 40


def media_message(kind: str, body: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The documented inbound payload with one message of `kind` carrying `body`."""
    payload = copy.deepcopy(load_payload("image"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("image")
    message.update({"id": message_id, "type": kind, kind: body})
    return payload


def last_text_part(harness: Harness) -> str:
    text: str = harness.fakes.gemini_bodies()[-1]["contents"][-1]["parts"][-1]["text"]
    return text


def bodies(fakes: FakeUpstreams) -> list[str]:
    return [m["text"]["body"] for m in fakes.sent()]
