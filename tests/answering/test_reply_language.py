"""Every fixed reply in the user's language, from the country calling code of their number."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Harness, load_payload, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_error

from language.replies import Reply, reply_text

# (the sender, the language their fixed replies must come in)
SENDERS = [
    ("5511987654321", "pt-BR"),  # +55 Brazil
    ("351912345678", "pt-BR"),  # +351 Portugal
    ("34612345678", "es"),  # +34 Spain
    ("5215512345678", "es"),  # +52 Mexico
    ("16505551234", "en"),  # +1 United States
    ("", "en"),  # only a business-scoped user id: no number to read
]
BSUID = "BR.8830192746501"


def sent_by(wa_id: str, message: dict[str, Any], message_id: str) -> dict[str, Any]:
    """A webhook of one message from `wa_id` (or from a business-scoped id when empty)."""
    payload = copy.deepcopy(load_payload("text"))
    value = payload["entry"][0]["changes"][0]["value"]
    message = {**message, "id": message_id, "timestamp": value["messages"][0]["timestamp"]}
    if wa_id:
        value["contacts"] = [{"profile": {"name": "C"}, "wa_id": wa_id}]
        message["from"] = wa_id
    else:
        value["contacts"] = [{"profile": {"name": "C"}, "wa_id": "", "user_id": BSUID}]
        message.update({"from": "", "from_user_id": BSUID})
    value["messages"] = [message]
    return payload


def text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


TRIGGERS: list[tuple[Reply, dict[str, Any]]] = [
    (Reply.STICKER, {"type": "sticker", "sticker": {"id": "99001", "mime_type": "image/webp"}}),
    (Reply.UNSUPPORTED, {"type": "unsupported", "errors": [{"code": 131051}]}),
    (
        Reply.DOCUMENT_DECLINED,
        {"type": "document", "document": {"id": "99002", "mime_type": "application/zip"}},
    ),
    (Reply.TYPE_DECLINED, {"type": "image", "image": {"id": "99003", "mime_type": "image/gif"}}),
    (Reply.UNAVAILABLE, {"type": "image", "image": {"id": "99004", "mime_type": "image/jpeg"}}),
    (Reply.APOLOGY, text("What about my order?")),  # Gemini fails (queued below)
    (Reply.RESET, text("/reset")),
    (Reply.HANDOFF, text("/human")),
    (Reply.FORGET, text("/forget")),
]


@pytest.fixture
async def app(tmp_path: Path, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    settings = make_settings(
        f"sqlite:///{tmp_path}/language.db", console_password="an-admin-password-for-tests"
    )
    async with running_app(settings, fakes) as harness:
        yield harness


@pytest.mark.parametrize(("wa_id", "language"), SENDERS)
async def test_every_fixed_reply_comes_in_the_users_language(
    app: Harness, wa_id: str, language: str
) -> None:
    app.fakes.gemini_queue.extend([gemini_error(500, "INTERNAL")] * 3)
    for index, (_, message) in enumerate(TRIGGERS):
        await app.post(sent_by(wa_id, message, f"wamid.lang-{index}"))
        await app.settle()
    expected = [reply_text(reply, language) for reply, _ in TRIGGERS]
    assert [m["text"]["body"] for m in app.fakes.sent()] == expected
    assert [m["to"] for m in app.fakes.sent()] == [wa_id or BSUID] * len(TRIGGERS)


async def test_the_rate_limit_notice_and_too_large_come_in_the_users_language(
    tmp_path: Path, fakes: FakeUpstreams
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/limits.db", rate_limit_per_minute=1, max_image_bytes=10
    )
    fakes.add_media("99005", b"x" * 11, "image/jpeg")
    image = {"type": "image", "image": {"id": "99005", "mime_type": "image/jpeg"}}
    async with running_app(settings, fakes) as app:
        await app.post(sent_by("5511987654321", image, "wamid.big"))
        await app.settle()
        await app.post(sent_by("5511987654321", text("again"), "wamid.again"))
        await app.settle()
    assert [m["text"]["body"] for m in fakes.sent()] == [
        reply_text(Reply.TOO_LARGE, "pt-BR", limit="0 MB"),
        reply_text(Reply.RATE_LIMITED, "pt-BR"),
    ]


async def test_reply_language_set_for_everyone_and_per_business(
    tmp_path: Path, fakes: FakeUpstreams
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/fixed.db", reply_language="es")
    async with running_app(settings, fakes) as app:
        await app.post(text_payload("/reset", message_id="wamid.es"))  # a US number
        await app.settle()
    assert fakes.sent()[-1]["text"]["body"] == reply_text(Reply.RESET, "es")


async def test_a_text_set_in_the_settings_wins_for_every_user(
    tmp_path: Path, fakes: FakeUpstreams
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/explicit.db",
        fallback_message="Sorry from the shop.",
        reset_reply="Fresh start!",
        forget_reply="Forgotten.",
        handoff_reply="A person is coming.",
        console_password="an-admin-password-for-tests",
    )
    fakes.gemini_queue.extend([gemini_error(500, "INTERNAL")] * 3)
    messages = [text("Hola?"), text("/reset"), text("/human"), text("/forget")]
    async with running_app(settings, fakes) as app:
        for index, message in enumerate(messages):
            await app.post(sent_by("5511987654321", message, f"wamid.x{index}"))
            await app.settle()
    assert [m["text"]["body"] for m in fakes.sent()] == [
        "Sorry from the shop.",
        "Fresh start!",
        "A person is coming.",
        "Forgotten.",
    ]
