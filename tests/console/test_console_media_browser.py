"""Media in the console's transcript in a real browser (Debian's Chromium through Playwright),
served by a real uvicorn, Meta's media endpoints faked by respx: a customer's voice note that
plays, whose address answers Ogg bytes with the session and nothing to a browser without it; the
spoken answer beside its text; a photo shown; a document that downloads; hostile names inert."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import httpx
from browser_support import PHONE, open_tab, sign_in
from console_apps import Served, customer_message, first_number, signed
from helpers import MEDIA_BASE
from playwright.sync_api import Browser, expect
from respx_upstreams import FakeUpstreams, sine_pcm

from voice.audio import to_voice_note

VOICE_ID, PHOTO_ID, DOC_ID = "8001", "8002", "8003"
PDF = b"%PDF-1.4\n% a price list\n" * 10
HOSTILE_NAME = '<script>alert("file")</script>prices.pdf'
HOSTILE_CAPTION = '<img src=x onerror="window.__xss=1;alert(1)"> which one?'
LIVE_MS = 5000


def png(width: int = 8, height: int = 8) -> bytes:
    """A small red PNG, decodable by any browser."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def send(served: Served, kind: str, body: dict[str, Any]) -> None:
    payload = customer_message("", name="Ana Souza", to=first_number(served.settings))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message.update({"type": kind, kind: body})
    content, headers = signed(payload)
    assert httpx.post(f"{served.url}/webhook", content=content, headers=headers).status_code == 200
    served.run(served.app.state.services.inline_dispatcher.wait_idle())


def body(media_id: str, data: bytes, mime_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": media_id,
        "mime_type": mime_type,
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }


def test_voice_notes_photos_and_documents_through_the_console(
    browser: Browser, served: Served, fakes: FakeUpstreams
) -> None:
    voice_in = to_voice_note(sine_pcm(1.5), "audio/L16;codec=pcm;rate=24000")
    image = png()
    fakes.add_media(VOICE_ID, voice_in, "audio/ogg; codecs=opus")
    fakes.add_media(PHOTO_ID, image, "image/png")
    fakes.add_media(DOC_ID, PDF, "application/pdf")
    send(served, "audio", body(VOICE_ID, voice_in, "audio/ogg; codecs=opus", voice=True))
    [(voice_out, _, _)] = fakes.uploads  # the spoken answer
    send(served, "image", body(PHOTO_ID, image, "image/png", caption=HOSTILE_CAPTION))
    send(served, "document", body(DOC_ID, PDF, "application/pdf", filename=HOSTILE_NAME))

    tab = open_tab(browser, served.url, PHONE)
    page = tab.page
    sign_in(tab)
    page.get_by_role("link", name="Ana Souza").first.click()
    audios = page.locator("audio")
    expect(audios).to_have_count(2)
    assert MEDIA_BASE not in page.content() and "lookaside" not in page.content()

    # The spoken answer: its text and its voice note in one entry.
    answer = page.locator("li.entry-assistant", has=page.locator("audio"))
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text("Sent as a voice note")
    expect(answer).to_contain_text("You said:")

    sources = [audios.nth(i).evaluate("a => a.src") for i in range(2)]
    assert all(src.startswith(f"{served.url}/console/media/") for src in sources)
    for src, expected in zip(sources, (voice_in, voice_out), strict=True):
        got = page.evaluate(
            """async (src) => {
                const r = await fetch(src);
                const bytes = new Uint8Array(await r.arrayBuffer());
                return [r.status, r.headers.get("content-type"), Array.from(bytes)];
            }""",
            src,
        )
        assert got[0] == 200 and got[1] == "audio/ogg"
        assert bytes(got[2]) == expected

    # The customer's voice note plays.
    first = audios.first
    first.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.currentTime > 0.2 && !a.error", arg=first.element_handle())
    first.evaluate("a => { a.pause(); a.__kept = true; }")

    # Without the session: nothing.
    stranger = browser.new_context()
    try:
        for src in sources:
            answered = stranger.request.get(src, max_redirects=0)
            assert answered.status in (302, 303, 401, 403)
            assert answered.body() == b""
        lost = stranger.new_page()
        lost.goto(sources[0])
        expect(lost.get_by_label("Username")).to_be_visible()
    finally:
        stranger.close()

    # The photo shows; its caption and the document's name stay text.
    photo = page.get_by_role("img", name="Photo")
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 8
    customer = page.locator("li.entry-user")
    expect(customer.get_by_text(HOSTILE_CAPTION, exact=False)).to_be_visible()
    link = page.get_by_role("link", name=HOSTILE_NAME)
    expect(link).to_be_visible()
    with page.expect_download() as waiting:
        link.click()
    download = waiting.value
    path = download.path()
    assert path is not None and path.read_bytes() == PDF
    assert download.suggested_filename.endswith("prices.pdf")
    assert "/" not in download.suggested_filename
    assert page.evaluate("window.__xss") is None and tab.dialogs == []

    # A new message redraws the transcript; the voice note already there is kept, not reloaded.
    served.write("And the price?", name="Ana Souza")
    expect(page.get_by_text("And the price?", exact=True)).to_be_visible(timeout=LIVE_MS)
    assert page.locator("audio").first.evaluate("a => a.__kept === true")
    assert tab.errors == []
