"""The app's logs: no secret, phone number or message text in any line, failure paths included."""

from __future__ import annotations

import logging

import httpx
import pytest
from helpers import (
    APP_SECRET,
    GEMINI_API_KEY,
    VERIFY_TOKEN,
    WHATSAPP_TOKEN,
    Harness,
    load_payload,
    text_payload,
)
from respx_upstreams import gemini_error, graph_error

from ops.logs import RedactQuerySecrets

# --- Logs -------------------------------------------------------------------------------------


async def test_no_secret_phone_number_or_text_in_any_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await harness.client.get(
        "/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "7"},
    )
    await harness.post(load_payload("batch"))
    await harness.post(load_payload("statuses"))
    await harness.post(load_payload("text"), signature="sha256=bad")
    harness.fakes.gemini_queue.append(gemini_error(500, "INTERNAL"))
    await harness.settle()
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "answered message" in text  # the log is not empty: it speaks in ids and hashes
    for forbidden in (
        VERIFY_TOKEN,
        APP_SECRET,
        WHATSAPP_TOKEN,
        GEMINI_API_KEY,
        "16505551234",
        "233245551111",
        "5511955551234",
        "opening hours",
        "Recife",
    ):
        assert forbidden not in text, forbidden


def every_log_line(caplog: pytest.LogCaptureFixture) -> str:
    """Every record any logger emitted, with its arguments and traceback."""
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records
    )


async def test_a_failed_read_receipt_logs_neither_the_number_nor_the_text(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records reach caplog
    harness.fakes.read_queue.append(graph_error(400, 100))
    payload = text_payload("my parcel number is 55501", message_id="wamid.rr", wa_id="447700900123")
    await harness.post(payload)
    await harness.settle()
    assert [m["to"] for m in harness.fakes.sent()] == ["447700900123"]
    assert harness.fakes.read_receipts() == []
    text = every_log_line(caplog)
    assert "mark_read" in text  # the failure was logged, by hash and code
    for forbidden in ("447700900123", "my parcel number", "55501", "Sheena Nelson"):
        assert forbidden not in text, forbidden


async def test_refused_media_logs_neither_the_number_nor_the_caption(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Too large, corrupt (its hash does not match) and unavailable: each refusal is logged,
    and none of those lines names the sender or repeats what they wrote."""
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records reach caplog
    fakes = harness.fakes
    senders = {"2001": "447700900201", "2002": "447700900202", "2003": "447700900203"}
    too_large = b"\xff\xd8" + b"x" * harness.settings.max_image_bytes
    fakes.add_media("2001", too_large, "image/jpeg")
    fakes.add_media("2002", b"\xff\xd8 small", "image/jpeg")
    fakes.download_queue.append(httpx.Response(200, content=b"tampered"))  # only 2002 downloads
    # 2003 is unknown to the fake Graph API: its metadata request fails.
    for media_id, wa_id in senders.items():
        payload = load_payload("image")
        value = payload["entry"][0]["changes"][0]["value"]
        value["contacts"][0]["wa_id"] = wa_id
        message = value["messages"][0]
        message.update({"id": f"wamid.media-{media_id}", "from": wa_id})
        message["image"].update({"id": media_id, "caption": f"private caption {media_id}"})
        await harness.post(payload)
    await harness.settle()
    assert fakes.gemini_calls == []
    assert sorted(m["to"] for m in fakes.sent()) == sorted(senders.values())
    text = every_log_line(caplog)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3, refusals
    assert all(reason in text for reason in ("too_large", "corrupt", "unavailable"))
    for forbidden in (*senders.values(), "private caption", "Sheena Nelson"):
        assert forbidden not in text, forbidden


def test_access_log_filter_redacts_the_verify_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            f"/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=9",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactQuerySecrets().filter(record)
    line = record.getMessage()
    assert VERIFY_TOKEN not in line
    assert "hub.verify_token=***" in line
    assert "hub.challenge=9" in line
