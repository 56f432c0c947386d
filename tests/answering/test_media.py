"""Media read by Gemini: photos, voice notes and PDFs downloaded, checked and given to Gemini."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from typing import Any

import httpx
import pytest
from helpers import MEDIA_BASE, Harness, conversation, load_payload, make_settings, running_app
from media_support import PDF, bodies, last_text_part, media_message
from respx_upstreams import FakeUpstreams, gemini_answer, graph_error

from language.replies import Reply, reply_text

# The English fixed replies: the users of these tests have US numbers.
DOCUMENT_DECLINE = reply_text(Reply.DOCUMENT_DECLINED, "en")


JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg bytes" * 20
OGG = b"OggS" + b"\x00opus voice" * 50


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
