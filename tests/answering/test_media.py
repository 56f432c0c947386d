"""Every kind of message answered well: media read by Gemini, the rest as text or a reply."""

from __future__ import annotations

import base64
import copy
import hashlib
import time
import urllib.parse
from typing import Any

import httpx
import pytest
from helpers import (
    MEDIA_BASE,
    Harness,
    conversation,
    load_payload,
    make_settings,
    running_app,
    text_payload,
)
from respx_upstreams import FakeUpstreams, gemini_answer, graph_error

from answering.inbound import describe
from language.replies import Reply, reply_text
from storage import recorder as recorder_module
from webhook.events import Kind

# The English fixed replies: the users of these tests have US numbers.
DOCUMENT_DECLINE = reply_text(Reply.DOCUMENT_DECLINED, "en")
STICKER_REPLY = reply_text(Reply.STICKER, "en")
UNSUPPORTED_REPLY = reply_text(Reply.UNSUPPORTED, "en")
RATE_LIMIT_NOTICE = reply_text(Reply.RATE_LIMITED, "en")

JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg bytes" * 20
OGG = b"OggS" + b"\x00opus voice" * 50
PDF = b"%PDF-1.7\n" + b"price list" * 40


def media_message(kind: str, body: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The documented inbound payload with one message of `kind` carrying `body`."""
    payload = copy.deepcopy(load_payload("image"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("image")
    message.update({"id": message_id, "type": kind, kind: body})
    return payload


def inline_parts(harness: Harness) -> list[tuple[str, bytes]]:
    """(mime type, bytes) of the inline parts of the last Gemini request's new message.

    The SDK writes proto-JSON, whose parsers take either spelling of the names and either
    base64 alphabet; this reads both.
    """
    parts = harness.fakes.gemini_bodies()[-1]["contents"][-1]["parts"]
    found = []
    for part in parts:
        inline = part.get("inlineData") or part.get("inline_data")
        if inline:
            mime = inline.get("mimeType") or inline.get("mime_type")
            found.append((mime, base64.urlsafe_b64decode(inline["data"])))
    return found


def last_text_part(harness: Harness) -> str:
    text: str = harness.fakes.gemini_bodies()[-1]["contents"][-1]["parts"][-1]["text"]
    return text


def bodies(fakes: FakeUpstreams) -> list[str]:
    return [m["text"]["body"] for m in fakes.sent()]


# --- Media read by Gemini -----------------------------------------------------------------------


async def test_photo_goes_to_gemini_inline_with_its_caption(harness: Harness) -> None:
    harness.fakes.add_media("1003383421387256", JPEG, "image/jpeg")
    harness.fakes.gemini_queue.append(gemini_answer("Yes, that is the **blue** one."))
    await harness.post(load_payload("image"))
    await harness.settle()

    assert inline_parts(harness) == [("image/jpeg", JPEG)]
    assert "Is this the blue one?" in last_text_part(harness)
    assert bodies(harness.fakes) == ["Yes, that is the *blue* one."]
    download = harness.fakes.media_requests[-1]
    assert download.headers["authorization"].startswith("Bearer ")
    history = await harness.services.store.conversations.history(
        conversation("16505551234"), 10, 10_000
    )
    assert [t.text for t in history] == [
        "[a photo] Is this the blue one?",
        "Yes, that is the **blue** one.",
    ]


async def test_voice_note_is_sent_as_plain_audio_ogg(harness: Harness) -> None:
    harness.fakes.add_media("1046531573838283", OGG, "audio/ogg; codecs=opus")
    await harness.post(load_payload("voice"))
    await harness.settle()
    assert inline_parts(harness) == [("audio/ogg", OGG)]
    assert "voice note" in last_text_part(harness)
    assert len(harness.fakes.voice_notes()) == 1  # answered in kind (VOICE_REPLIES=auto)


async def test_pdf_document_is_read_with_its_name(harness: Harness) -> None:
    harness.fakes.add_media("77001", PDF, "application/pdf")
    body = {
        "id": "77001",
        "mime_type": "application/pdf",
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "filename": "prices.pdf",
        "caption": "What does the large one cost?",
    }
    await harness.post(media_message("document", body, "wamid.doc-1"))
    await harness.settle()
    assert inline_parts(harness) == [("application/pdf", PDF)]
    assert "prices.pdf" in last_text_part(harness)
    assert "What does the large one cost?" in last_text_part(harness)


async def test_other_document_types_are_declined_without_download(harness: Harness) -> None:
    body = {"id": "77002", "mime_type": "application/vnd.ms-excel", "filename": "x.xls"}
    await harness.post(media_message("document", body, "wamid.doc-2"))
    await harness.settle()
    assert bodies(harness.fakes) == [DOCUMENT_DECLINE]
    assert harness.fakes.media_requests == []
    assert harness.fakes.gemini_calls == []


async def test_an_expired_media_url_is_fetched_again(harness: Harness) -> None:
    harness.fakes.add_media("1003383421387256", JPEG, "image/jpeg")
    harness.fakes.download_queue.append(httpx.Response(404, json={"error": {"code": 100}}))
    await harness.post(load_payload("image"))
    await harness.settle()
    urls = [str(r.url) for r in harness.fakes.media_requests]
    assert len(urls) == 4  # metadata, download (404), fresh metadata, download
    assert urls[1] != urls[3]  # the second download used the fresh URL
    assert inline_parts(harness) == [("image/jpeg", JPEG)]


async def test_media_with_a_wrong_sha256_is_not_given_to_gemini(harness: Harness) -> None:
    harness.fakes.add_media("1003383421387256", JPEG, "image/jpeg")
    harness.fakes.download_queue.append(httpx.Response(200, content=b"tampered bytes"))
    await harness.post(load_payload("image"))
    await harness.settle()
    assert harness.fakes.gemini_calls == []
    assert len(bodies(harness.fakes)) == 1
    assert "couldn't open that file" in bodies(harness.fakes)[0]


def media_metadata(media_id: str, data: bytes, sha256: str | None) -> httpx.Response:
    """Meta's answer to GET /<media id>, with the digest in the form given (or none)."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "url": f"{MEDIA_BASE}/{media_id}?ext=1&hash=b64",
        "mime_type": "image/jpeg",
        "file_size": len(data),
        "id": media_id,
    }
    if sha256 is not None:
        body["sha256"] = sha256
    return httpx.Response(200, json=body)


def base64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.parametrize("given_in", ["metadata", "webhook"])
async def test_a_sha256_meta_gives_in_base64_is_accepted_and_the_media_read(
    harness: Harness, given_in: str
) -> None:
    digest = base64_sha256(JPEG)
    assert len(digest) == 44 and digest.endswith("=")  # Meta's form, not 64 hex digits
    harness.fakes.add_media("1003383421387256", JPEG, "image/jpeg")
    payload = load_payload("image")
    image = payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"]
    if given_in == "metadata":
        metadata = media_metadata("1003383421387256", JPEG, digest)
    else:  # the metadata names no digest: the webhook's own is checked
        image["sha256"] = digest
        metadata = media_metadata("1003383421387256", JPEG, None)
    harness.fakes.media_info_queue.append(metadata)
    await harness.post(payload)
    await harness.settle()
    assert len(harness.fakes.gemini_calls) == 1, bodies(harness.fakes)
    assert inline_parts(harness) == [("image/jpeg", JPEG)]
    assert "Is this the blue one?" in last_text_part(harness)
    assert len(bodies(harness.fakes)) == 1
    assert "couldn't open that file" not in bodies(harness.fakes)[0]


async def test_a_wrong_base64_sha256_is_refused_and_not_given_to_gemini(harness: Harness) -> None:
    harness.fakes.add_media("1003383421387256", JPEG, "image/jpeg")
    wrong = base64_sha256(JPEG + b"one more byte")
    harness.fakes.media_info_queue.append(media_metadata("1003383421387256", JPEG, wrong))
    await harness.post(load_payload("image"))
    await harness.settle()
    assert len(harness.fakes.media_requests) == 2  # the metadata, then the bytes
    assert harness.fakes.gemini_calls == []
    assert len(bodies(harness.fakes)) == 1
    assert "couldn't open that file" in bodies(harness.fakes)[0]


async def test_oversize_media_is_refused_before_downloading(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.add_media("1003383421387256", JPEG, "image/jpeg")
    settings = make_settings(database_url, max_image_bytes=100)
    async with running_app(settings, fakes) as harness:
        await harness.post(load_payload("image"))
        await harness.settle()
    assert len(fakes.media_requests) == 1  # the metadata only, never the bytes
    assert fakes.gemini_calls == []
    assert "too large" in bodies(fakes)[0]


async def test_a_download_that_grows_past_the_limit_is_stopped(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.add_media("1003383421387256", b"x" * 50, "image/jpeg")  # metadata says 50 bytes
    fakes.download_queue.append(httpx.Response(200, content=b"x" * 5000))
    settings = make_settings(database_url, max_image_bytes=1000)
    async with running_app(settings, fakes) as harness:
        await harness.post(load_payload("image"))
        await harness.settle()
    assert fakes.gemini_calls == []
    assert "too large" in bodies(fakes)[0]


async def test_media_metadata_failure_gets_a_reply_not_silence(harness: Harness) -> None:
    harness.fakes.media_info_queue.append(graph_error(400, 131052, "OAuthException"))
    await harness.post(load_payload("image"))
    await harness.settle()
    assert harness.fakes.gemini_calls == []
    assert "couldn't open that file" in bodies(harness.fakes)[0]


@pytest.mark.parametrize("media_id", ["../../123/messages", "𴥿Ê¾", "1 2?x=y"])
async def test_an_odd_media_id_is_asked_for_as_one_path_segment(
    harness: Harness, media_id: str
) -> None:
    """Meta's ids are digits; anything else is still one id Meta answers with an error, never
    another Graph endpoint, and the user hears the file could not be opened."""
    image = {"id": media_id, "mime_type": "image/jpeg", "sha256": "x"}
    await harness.post(media_message("image", image, "wamid.odd-media"))
    await harness.settle()
    [asked] = harness.fakes.media_requests
    version, segment = asked.url.raw_path.decode().removeprefix("/").split("/")
    assert (version, urllib.parse.unquote(segment)) == ("v25.0", media_id)
    assert harness.fakes.gemini_calls == []
    assert "couldn't open that file" in bodies(harness.fakes)[0]


# --- Other kinds as text -------------------------------------------------------------------------


async def test_buttons_lists_locations_and_contacts_reach_gemini_as_text(harness: Harness) -> None:
    await harness.post(load_payload("interactive"))
    await harness.settle()
    asked = [b["contents"][-1]["parts"][-1]["text"] for b in harness.fakes.gemini_bodies()]
    assert asked[0] == "Yes, please"
    assert asked[1] == "Opening hours"
    assert asked[2] == "Stop promotions"
    assert "Marco Zero" in asked[3] and "Recife, PE" in asked[3] and "-8.0476" in asked[3]
    assert "Kofi Mensah" in asked[4] and "+233 24 555 1111" in asked[4]
    assert len(harness.fakes.sent()) == 5


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (Kind.ORDER, {"product_items": 1.5, "text": "hi"}),
        (Kind.ORDER, {"product_items": "abc"}),
        (Kind.CONTACTS, [{"name": {"formatted_name": "Ann"}, "phones": 7}]),
        (Kind.CONTACTS, [{"phones": {"phone": "+1"}}]),
    ],
)
def test_odd_field_types_are_described_not_crashed_on(kind: Kind, body: object) -> None:
    """Found by fuzzing: a number where Meta sends a list once made the answer fail."""
    text = describe(kind, {kind.value: body})
    assert text is not None and text.startswith("[The user")


async def test_order_is_described_to_gemini(harness: Harness) -> None:
    order = {
        "catalog_id": "1",
        "text": "Gift wrap please",
        "product_items": [
            {"product_retailer_id": "SKU-7", "quantity": 2, "item_price": 9.5, "currency": "EUR"}
        ],
    }
    await harness.post(media_message("order", order, "wamid.order-1"))
    await harness.settle()
    asked = last_text_part(harness)
    assert "2 x SKU-7 at 9.5 EUR" in asked and "Gift wrap please" in asked


async def test_sticker_gets_a_friendly_reply_without_gemini(harness: Harness) -> None:
    sticker = {"id": "5500", "mime_type": "image/webp", "sha256": "x", "animated": False}
    await harness.post(media_message("sticker", sticker, "wamid.sticker-1"))
    await harness.settle()
    assert bodies(harness.fakes) == [STICKER_REPLY]
    assert harness.fakes.gemini_calls == []


async def test_system_message_is_only_recorded(harness: Harness) -> None:
    system = {"body": "User changed number", "type": "user_changed_number"}
    await harness.post(media_message("system", system, "wamid.system-1"))
    await harness.settle()
    assert harness.fakes.graph_calls == []
    assert harness.fakes.gemini_calls == []


async def test_unsupported_names_what_is_supported(harness: Harness) -> None:
    await harness.post(load_payload("unsupported"))
    await harness.settle()
    assert bodies(harness.fakes) == [UNSUPPORTED_REPLY, UNSUPPORTED_REPLY]
    assert "voice notes" in UNSUPPORTED_REPLY and "PDF" in UNSUPPORTED_REPLY


# --- Abuse and cost limits ----------------------------------------------------------------


class StoreClock:
    """Stands in for the `time` module of store.py: the clock messages are recorded by.

    Frozen, and moved on by the test: rate-limit windows are counted over the times the
    store records messages at, so moving it is the user writing again a minute or a day
    later. Everything else (the webhook, the worker, the upstream fakes) runs as usual.
    """

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def store_clock(monkeypatch: pytest.MonkeyPatch) -> StoreClock:
    clock = StoreClock()
    monkeypatch.setattr(recorder_module, "time", clock)
    return clock


async def say(harness: Harness, text: str) -> None:
    """The user sends `text`; return once the service has done all it will with it."""
    await harness.post(text_payload(text, message_id=f"wamid.say-{text}"))
    await harness.settle()


async def test_rate_limit_notice_once_then_silence_until_the_minute_slides(
    database_url: str, fakes: FakeUpstreams, store_clock: StoreClock
) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=2)
    async with running_app(settings, fakes) as harness:
        for n in range(4):
            await say(harness, f"q{n}")
        store_clock.now += 59  # still the same minute
        await say(harness, "q4")
        assert bodies(fakes) == ["You said: q0", "You said: q1", RATE_LIMIT_NOTICE]
        assert len(fakes.gemini_calls) == 2

        store_clock.now += 61  # over a minute after the last message: the window has slid
        for n in range(5, 9):
            await say(harness, f"q{n}")
    assert bodies(fakes) == [
        "You said: q0",
        "You said: q1",
        RATE_LIMIT_NOTICE,
        "You said: q5",
        "You said: q6",
        RATE_LIMIT_NOTICE,  # a new window, a new notice; then silence again
    ]
    assert len(fakes.gemini_calls) == 4


async def test_rate_limit_holds_across_two_instances(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=2)
    async with (
        running_app(settings, fakes) as first,
        running_app(settings, fakes) as second,
    ):
        for n in range(4):
            app = (first, second)[n % 2]
            await app.post(text_payload(f"q{n}", message_id=f"wamid.two{n}"))
            await app.settle_all()
        await first.settle()
        await second.settle()
    assert len(fakes.gemini_calls) == 2
    assert bodies(fakes).count(RATE_LIMIT_NOTICE) == 1
    assert len(fakes.sent()) == 3


async def test_the_daily_limit_slides_after_24_hours_with_a_new_notice(
    database_url: str, fakes: FakeUpstreams, store_clock: StoreClock
) -> None:
    settings = make_settings(database_url, rate_limit_per_day=2, rate_limit_per_minute=0)
    first = store_clock.now
    async with running_app(settings, fakes) as harness:
        for n in range(3):
            await say(harness, f"d{n}")
        store_clock.now = first + 23 * 3600 + 59 * 60  # 23 h 59 min later: the same day
        await say(harness, "d3")
        assert bodies(fakes) == ["You said: d0", "You said: d1", RATE_LIMIT_NOTICE]

        store_clock.now = first + 24 * 3600 + 60  # 24 h 1 min later: d0 to d2 have left
        for n in range(4, 7):
            await say(harness, f"d{n}")
    assert bodies(fakes) == [
        "You said: d0",
        "You said: d1",
        RATE_LIMIT_NOTICE,
        "You said: d4",  # d3 and d4 are the day's two
        RATE_LIMIT_NOTICE,
    ]
    assert len(fakes.gemini_calls) == 3


async def test_privacy_commands_are_answered_even_over_the_limit(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=1)
    async with running_app(settings, fakes) as harness:
        for text in ("hello", "again", "and again", "/reset", "/forget"):
            await say(harness, text)
    assert bodies(fakes) == [
        "You said: hello",
        RATE_LIMIT_NOTICE,
        reply_text(Reply.RESET, "en"),  # past the notice, where anything else gets silence
        reply_text(Reply.FORGET, "en"),
    ]
    assert len(fakes.gemini_calls) == 1


async def test_long_text_is_cut_with_a_note_to_gemini(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url, max_input_chars=50)
    async with running_app(settings, fakes) as harness:
        await harness.post(text_payload("x" * 500, message_id="wamid.long"))
        await harness.settle()
    asked = fakes.gemini_bodies()[0]["contents"][-1]["parts"][-1]["text"]
    assert asked.startswith("x" * 50 + "\n\n[Note:")
    assert "500 characters" in asked
    assert "x" * 51 not in asked


async def test_max_output_tokens_bounds_each_answer(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with running_app(make_settings(database_url, max_output_tokens=321), fakes) as harness:
        await harness.post(text_payload("hi", message_id="wamid.tok"))
        await harness.settle()
    assert fakes.gemini_bodies()[0]["generationConfig"]["maxOutputTokens"] == 321


async def test_reply_parts_are_sent_in_order_with_pacing(
    database_url: str, fakes: FakeUpstreams, monkeypatch: Any
) -> None:
    from answering import sending

    pauses: list[float] = []

    async def record_pause(seconds: float) -> None:
        pauses.append(seconds)

    answer = "\n\n".join(f"Part {n}. " + "word " * 700 for n in range(3))
    fakes.gemini_queue.append(gemini_answer(answer))
    settings = make_settings(database_url, part_interval_seconds=1.5)
    async with running_app(settings, fakes) as harness:
        monkeypatch.setattr(sending, "pause_between_parts", record_pause)
        await harness.post(text_payload("long please", message_id="wamid.parts"))
        await harness.settle()
        monkeypatch.undo()
    sent = bodies(fakes)
    assert [s.split(".")[0] for s in sent] == ["Part 0", "Part 1", "Part 2"]
    assert pauses.count(1.5) == len(sent) - 1
