"""Media in the console's transcript, over HTTP on SQLite and PostgreSQL, with Meta's media
endpoints faked by respx: a customer's voice note and the assistant's spoken answer played
through the console with the session (and nothing without it), a photo and a document, an
operator of another business refused, Meta's errors (expired, 5xx, too large) as a placeholder,
never a 500, and never Meta's own address in the page."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from console_apps import (
    ADMIN_PASSWORD,
    CUSTOMER,
    Console,
    console_app,
    conversation_of,
    customer_message,
    number_id,
    signed,
)
from console_support import (
    CSP,
    OPERATOR_PASSWORD,
    add_operator,
    signed_in,
    visible_text,
)
from helpers import GRAPH_BASE, MEDIA_BASE, PHONE_NUMBER_ID
from respx_upstreams import FakeUpstreams, graph_error
from sqlalchemy import update

from console.media import (
    RangeNotSatisfiable,
    disposition,
    requested_range,
    safe_filename,
    served_type,
)
from storage.schema import media

VOICE_ID, PHOTO_ID, DOC_ID = "9001", "9002", "9003"
OGG_IN = b"OggS customer voice note" * 20
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg bytes" * 30
PDF = b"%PDF-1.7\nprice list" * 20
MEDIA_URL = re.compile(r"/console/media/[A-Za-z0-9_-]{24}")
HOSTILE_NAME = '<script>alert("name")</script>"; x=.pdf'
HOSTILE_CAPTION = "<img src=x onerror=alert(1)>"


def media_payload(
    kind: str, body: dict[str, Any], *, to: str = PHONE_NUMBER_ID, wa_id: str = CUSTOMER
) -> Any:
    """A customer's media message of `kind` (its `body` as Meta sends it) to business `to`."""
    payload = customer_message("", wa_id=wa_id, to=to)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message.update({"type": kind, kind: body})
    return payload


def media_body(media_id: str, data: bytes, mime_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": media_id,
        "mime_type": mime_type,
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }


async def send(console: Console, payload: Any) -> int:
    """Post a customer's webhook and let it be answered; the conversation's id."""
    body, headers = signed(payload)
    assert (await console.client.post("/webhook", content=body, headers=headers)).status_code == 200
    await asyncio.wait_for(console.services.inline_dispatcher.wait_idle(), 15)
    value = payload["entry"][0]["changes"][0]["value"]
    to, user = value["metadata"]["phone_number_id"], value["contacts"][0]["wa_id"]
    return (await conversation_of(console.store, user, to)).id


def media_urls(html: str) -> list[str]:
    """The console addresses of a page's files, once each, in order."""
    return list(dict.fromkeys(MEDIA_URL.findall(html)))


async def page(console: Console, conversation: int) -> str:
    response = await console.client.get(f"/console/conversations/{conversation}")
    assert response.status_code == 200
    assert MEDIA_BASE not in response.text and "lookaside" not in response.text
    assert GRAPH_BASE not in response.text
    return response.text


def assert_media_headers(response: httpx.Response, content_type: str) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "private, max-age=600"
    assert response.headers["content-security-policy"] == CSP


@asynccontextmanager
async def voice_conversation(
    database_url: str, fakes: FakeUpstreams
) -> AsyncIterator[tuple[Console, int]]:
    """A customer's voice note answered by voice, and the admin signed in to the console: the
    console and the conversation's id."""
    fakes.add_media(VOICE_ID, OGG_IN, "audio/ogg; codecs=opus")
    async with console_app(database_url, fakes) as console:
        voice = media_body(VOICE_ID, OGG_IN, "audio/ogg; codecs=opus", voice=True)
        conversation = await send(console, media_payload("audio", voice))
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        yield console, conversation


async def test_a_voice_note_and_its_spoken_answer_play_with_the_session(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with voice_conversation(database_url, fakes) as (console, conversation):
        [(answer_ogg, _, _)] = fakes.uploads  # the spoken answer, made here and uploaded
        html = await page(console, conversation)
        assert html.count("<audio controls") == 2
        asked, answered = media_urls(html)
        assert f'src="{asked}"' in html and f'src="{answered}"' in html
        assert "Sent as a voice note" in visible_text(html)
        assert "You said:" in html  # the answer's text, in the same entry as its voice note
        entry = html[html.index("entry-assistant") :]
        assert entry.index("You said:") < entry.index(answered) < entry.index("</li>")

        fetched_before = len(fakes.media_requests)
        response = await console.client.get(asked)
        assert_media_headers(response, "audio/ogg")
        assert response.content == OGG_IN
        assert response.headers["content-disposition"] == "inline"
        assert len(fakes.media_requests) == fetched_before + 2  # GET /{media-id}, the download
        response = await console.client.get(answered)
        assert_media_headers(response, "audio/ogg")
        assert response.content == answer_ogg
        assert len(fakes.media_requests) == fetched_before + 2  # kept here: Meta is not asked

        async with console.client_from("192.0.2.77") as stranger:
            for url in (asked, answered):
                refused = await stranger.get(url)
                assert refused.status_code == 303
                assert refused.headers["location"] == "/console/login"  # not a page to return to
                assert OGG_IN not in refused.content and answer_ogg[:64] not in refused.content
                assert refused.content == b""
            stranger.cookies.set("console_session", "forged-session-token")
            for url in (asked, answered):
                wrong = await stranger.get(url)
                assert wrong.status_code == 303 and wrong.content == b""


async def test_a_voice_note_is_served_by_ranges_as_safari_asks(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """Safari plays an <audio> only from a server that answers `Range` with 206."""
    async with voice_conversation(database_url, fakes) as (console, conversation):
        asked, answered = media_urls(await page(console, conversation))
        whole = await console.client.get(asked)
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        probe = await console.client.get(asked, headers={"Range": "bytes=0-1"})
        assert probe.status_code == 206 and probe.content == b"Og"
        assert probe.headers["content-range"] == f"bytes 0-1/{len(OGG_IN)}"
        assert probe.headers["content-type"] == "audio/ogg"
        assert probe.headers["cache-control"] == "private, max-age=600"
        rest = await console.client.get(answered, headers={"Range": "bytes=100-"})
        [(answer_ogg, _, _)] = fakes.uploads
        assert rest.status_code == 206 and rest.content == answer_ogg[100:]
        assert rest.headers["content-range"] == f"bytes 100-{len(answer_ogg) - 1}/{len(answer_ogg)}"
        past = await console.client.get(asked, headers={"Range": f"bytes={len(OGG_IN)}-"})
        assert past.status_code == 416 and past.content == b""
        assert past.headers["content-range"] == f"bytes */{len(OGG_IN)}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-1", (0, 1)),
        ("bytes=10-", (10, 479)),
        ("bytes=-30", (450, 479)),
        ("bytes=-1000", (0, 479)),
        ("bytes=400-9999", (400, 479)),
        ("bytes=5-2", None),  # not a range this reads: the whole file
        ("bytes=0-1, 5-9", None),  # several: the whole file
        ("bytes=-", None),
        ("items=0-1", None),
    ],
)
def test_the_range_asked_for(header: str | None, expected: tuple[int, int] | None) -> None:
    assert requested_range(header, 480) == expected


@pytest.mark.parametrize("header", ["bytes=480-", "bytes=500-600", "bytes=-0"])
def test_a_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        requested_range(header, 480)


async def test_a_photo_shows_and_a_document_downloads_by_a_safe_name(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.add_media(PHOTO_ID, JPEG, "image/jpeg")
    fakes.add_media(DOC_ID, PDF, "application/pdf")
    async with console_app(database_url, fakes) as console:
        photo = media_body(PHOTO_ID, JPEG, "image/jpeg", caption=HOSTILE_CAPTION)
        await send(console, media_payload("image", photo))
        document = media_body(DOC_ID, PDF, "application/pdf", filename=HOSTILE_NAME)
        conversation = await send(console, media_payload("document", document))
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        html = await page(console, conversation)
        image_url, document_url = media_urls(html)
        assert (
            f'<a href="{image_url}" target="_blank" rel="noopener"><img src="{image_url}"' in html
        )
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html

        response = await console.client.get(image_url)
        assert_media_headers(response, "image/jpeg")
        assert (response.content, response.headers["content-disposition"]) == (JPEG, "inline")
        response = await console.client.get(document_url)
        assert_media_headers(response, "application/pdf")
        assert response.content == PDF
        assert response.headers["content-disposition"] == (
            # what follows the last slash, its quote, semicolon and equals sign made harmless
            "attachment; filename=\"script___ x_.pdf\"; filename*=UTF-8''script%3E%22%3B%20x%3D.pdf"
        )

        fakes.media[DOC_ID] = (b"<html><script>alert(1)</script>", "text/html")
        response = await console.client.get(document_url)  # Meta now says another type
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"].startswith("attachment;")


async def test_an_operator_of_another_business_gets_nothing(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.add_media(PHOTO_ID, JPEG, "image/jpeg")
    fakes.add_media(DOC_ID, PDF, "application/pdf")
    businesses = ("Padaria Central", "Oficina Rápida")
    async with console_app(database_url, fakes, businesses=businesses) as console:
        photo = media_body(PHOTO_ID, JPEG, "image/jpeg")
        theirs = await send(console, media_payload("image", photo, to=number_id(0)))
        document = media_body(DOC_ID, PDF, "application/pdf", filename="a.pdf")
        mine = await send(
            console, media_payload("document", document, to=number_id(1), wa_id="5521900002222")
        )
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        [their_url] = media_urls(await page(console, theirs))
        [my_url] = media_urls(await page(console, mine))
        await add_operator(console, "bruna", [businesses[1]])
        async with console.client_from("192.0.2.78") as bruna:
            await signed_in(bruna, "bruna", OPERATOR_PASSWORD)
            requests = len(fakes.media_requests)
            refused = await bruna.get(their_url)
            assert refused.status_code == 404 and JPEG not in refused.content
            assert len(fakes.media_requests) == requests  # Meta is not even asked
            assert (await bruna.get(my_url)).content == PDF
            assert (await bruna.get("/console/media/" + "A" * 24)).status_code == 404


@pytest.mark.parametrize("failure", ["expired", "download_gone", "too_large"])
async def test_media_meta_no_longer_gives_is_a_placeholder(
    database_url: str, fakes: FakeUpstreams, failure: str
) -> None:
    fakes.add_media(PHOTO_ID, JPEG, "image/jpeg")
    async with console_app(database_url, fakes, max_image_bytes=1024) as console:
        conversation = await send(
            console, media_payload("image", media_body(PHOTO_ID, JPEG, "image/jpeg"))
        )
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        [url] = media_urls(await page(console, conversation))
        if failure == "expired":  # Meta forgets media ids after about 30 days
            del fakes.media[PHOTO_ID]
        elif failure == "download_gone":  # the id still answers, its address never does
            fakes.download_queue.extend([httpx.Response(404), httpx.Response(404)])
        else:
            fakes.media[PHOTO_ID] = (b"\xff\xd8" + b"x" * 1023, "image/jpeg")  # 1025 bytes
        response = await console.client.get(url)
        assert response.status_code == 404
        words = visible_text(response.text)
        if failure == "too_large":
            assert "This file is too large to show here." in words
        else:
            assert "no longer available from WhatsApp" in words
        html = await page(console, conversation)
        assert "<img" not in html and MEDIA_URL.search(html) is None
        placeholder = "too large to show" if failure == "too_large" else "no longer available"
        assert placeholder in visible_text(html)
        requests = len(fakes.media_requests)
        assert (await console.client.get(url)).status_code == 404
        assert len(fakes.media_requests) == requests  # Meta is not asked again


async def test_meta_failing_for_now_is_a_502_and_the_file_stays(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.add_media(PHOTO_ID, JPEG, "image/jpeg")
    async with console_app(database_url, fakes) as console:
        conversation = await send(
            console, media_payload("image", media_body(PHOTO_ID, JPEG, "image/jpeg"))
        )
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        [url] = media_urls(await page(console, conversation))
        fakes.media_info_queue.extend([graph_error(500, 1, "OAuthException")] * 4)  # every attempt
        response = await console.client.get(url)
        assert response.status_code == 502
        assert "Try again in a moment." in visible_text(response.text)
        assert MEDIA_URL.search(await page(console, conversation)) is not None  # still shown
        fakes.download_queue.append(httpx.ConnectError("reset"))
        fakes.download_queue.extend([httpx.ConnectError("reset")] * 3)
        assert (await console.client.get(url)).status_code == 502
        assert (await console.client.get(url)).content == JPEG  # Meta answers again


async def test_a_customers_file_older_than_meta_keeps_it_is_not_asked_for(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.add_media(PHOTO_ID, JPEG, "image/jpeg")
    async with console_app(database_url, fakes) as console:
        conversation = await send(
            console, media_payload("image", media_body(PHOTO_ID, JPEG, "image/jpeg"))
        )
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        [url] = media_urls(await page(console, conversation))
        async with console.store.db.write() as conn:  # 30 days and a minute ago
            await conn.execute(update(media).values(created_at=console.clock() - 30 * 86400 - 60))
        assert "no longer available" in visible_text(await page(console, conversation))
        requests = len(fakes.media_requests)
        assert (await console.client.get(url)).status_code == 404
        assert len(fakes.media_requests) == requests
        async with console.store.db.write() as conn:  # 30 days less a minute: still there
            await conn.execute(update(media).values(created_at=console.clock() - 30 * 86400 + 60))
        assert (await console.client.get(url)).content == JPEG


@pytest.mark.parametrize(
    ("mime_type", "served"),
    [
        ("audio/ogg; codecs=opus", "audio/ogg"),
        ("audio/mpeg", "audio/mpeg"),
        ("audio/mp4", "audio/mp4"),
        ("image/jpeg", "image/jpeg"),
        ("image/png", "image/png"),
        ("image/webp", "image/webp"),
        ("application/pdf", "application/pdf"),
        ("image/svg+xml", "application/octet-stream"),
        ("text/html", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_served_types_come_from_an_allow_list(mime_type: str, served: str) -> None:
    assert served_type(mime_type) == served


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("prices.pdf", "application/pdf", "prices.pdf"),
        ("../../etc/passwd", "text/plain", "passwd"),
        ("C:\\Users\\ana\\menu.pdf", "application/pdf", "menu.pdf"),
        ("bad\r\nname\x00.pdf", "application/pdf", "badname.pdf"),
        (None, "application/pdf", "document.pdf"),
        ("...", "text/plain", "document.txt"),
        ("x" * 300 + ".pdf", "application/pdf", "x" * 96 + ".pdf"),
    ],
)
def test_download_names_are_safe(filename: str | None, content_type: str, expected: str) -> None:
    assert safe_filename(filename, content_type) == expected


def test_what_is_inline_and_what_is_an_attachment() -> None:
    assert disposition("image", "image/jpeg", None) == "inline"
    assert disposition("audio", "audio/ogg", None) == "inline"
    assert disposition("document", "image/jpeg", "p.jpg").startswith("attachment;")
    assert disposition("image", "application/octet-stream", None).startswith("attachment;")
    assert disposition("document", "application/pdf", "menú.pdf") == (
        "attachment; filename=\"men_.pdf\"; filename*=UTF-8''men%C3%BA.pdf"
    )
