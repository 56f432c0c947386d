"""Tests for whatsapp.py: webhook signatures, payload parsing and the Graph API client."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from helpers import GRAPH_BASE, PAYLOADS
from meta_openapi import check_posted_messages
from pydantic import SecretStr
from respx_upstreams import graph_error

from domain.types import Backoff
from webhook.events import InboundMessage, Kind, parse_webhook
from webhook.signature import sign, verify_signature
from whatsapp import (
    GraphAPIError,
    GraphClient,
    MediaInfo,
    NumberNames,
    graph_http_client,
)

PNID = "106540352242922"


def load_payload(name: str) -> Any:
    """A payload file exactly as stored (conftest's loader moves timestamps to now)."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


TOKEN = "graph-token-abc123XYZ"
MESSAGES = f"{GRAPH_BASE}/v25.0/{PNID}/messages"

# ---------------------------------------------------------------------------------------------
# Signatures


def test_sign_known_answer() -> None:
    body, secret = b'{"a":1}', "s"
    independent = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Computed once with `printf '{"a":1}' | openssl dgst -sha256 -hmac s`.
    known = "37beaf650f70b40ec9706929c2e9d835cbd63729988f48781e6383a147215f07"
    assert independent == known
    assert sign(body, secret) == "sha256=" + known
    assert verify_signature(body, "sha256=" + known, secret)


BODY = json.dumps(load_payload("text")).encode()
SECRET = "app-secret-1"
GOOD = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("body", "header", "secret", "ok"),
    [
        pytest.param(BODY, GOOD, SECRET, True, id="valid"),
        pytest.param(BODY, "  " + GOOD + " ", SECRET, True, id="surrounding-space"),
        pytest.param(BODY, "sha256=" + GOOD[7:].upper(), SECRET, True, id="uppercase-hex"),
        pytest.param(BODY, GOOD, "other-secret", False, id="wrong-secret"),
        pytest.param(BODY + b" ", GOOD, SECRET, False, id="tampered-body"),
        pytest.param(BODY.replace(b"color", b"colour"), GOOD, SECRET, False, id="edited-body"),
        pytest.param(BODY, None, SECRET, False, id="missing-header"),
        pytest.param(BODY, "", SECRET, False, id="empty-header"),
        pytest.param(BODY, GOOD[7:], SECRET, False, id="no-prefix"),
        pytest.param(
            BODY,
            "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
            SECRET,
            False,
            id="sha1-prefix",
        ),
        pytest.param(BODY, "sha1=" + GOOD[7:], SECRET, False, id="sha1-prefix-sha256-hex"),
        pytest.param(BODY, GOOD[:-1], SECRET, False, id="truncated-digest"),
    ],
)
def test_verify_signature(body: bytes, header: str | None, secret: str, ok: bool) -> None:
    assert verify_signature(body, header, secret) is ok


def test_signature_is_over_raw_escaped_unicode_bytes() -> None:
    raw = b'{"text":{"body":"caf\\u00e9"}}'  # as Meta sends it: ASCII with \u escapes
    header = "sha256=" + hmac.new(b"k", raw, hashlib.sha256).hexdigest()
    assert verify_signature(raw, header, "k")
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert reserialised != raw
    assert not verify_signature(reserialised, header, "k")


# ---------------------------------------------------------------------------------------------
# Parsing


def only_message(name: str) -> InboundMessage:
    events = parse_webhook(load_payload(name))
    assert len(events.messages) == 1
    return events.messages[0]


def test_parse_text() -> None:
    events = parse_webhook(load_payload("text"))
    assert events.statuses == [] and events.errors == []
    m = only_message("text")
    assert m.id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert m.kind is Kind.TEXT
    assert m.raw_type == "text"
    assert m.wa_id == "16505551234"
    assert m.user_id is None
    assert m.profile_name == "Sheena Nelson"
    assert m.timestamp == 1749416383 and isinstance(m.timestamp, int)
    assert m.text == "Does it come in another color?"
    assert m.phone_number_id == PNID
    assert m.reply_to is None
    assert m.user_key == "16505551234"
    assert m.recipient == "16505551234"


def test_parse_batch_keeps_every_message_in_order() -> None:
    events = parse_webhook(load_payload("batch"))
    assert [m.id for m in events.messages] == ["wamid.batch-1", "wamid.batch-2", "wamid.batch-3"]
    assert [m.wa_id for m in events.messages] == ["16505551234", "233245551111", "5511955551234"]
    assert [m.profile_name for m in events.messages] == [
        "Sheena Nelson",
        "Kofi Mensah",
        "Ana Souza",
    ]
    assert events.messages[2].text == "Olá! Vocês entregam em Recife?"
    assert len(events.statuses) == 1
    status = events.statuses[0]
    assert (status.id, status.status, status.timestamp) == (
        "wamid.sent-earlier",
        "delivered",
        1749416386,
    )


def test_parse_statuses() -> None:
    events = parse_webhook(load_payload("statuses"))
    assert events.messages == []
    assert [s.status for s in events.statuses] == ["sent", "delivered", "read", "failed"]
    assert all(s.phone_number_id == PNID for s in events.statuses)
    assert [s.errors for s in events.statuses[:3]] == [(), (), ()]
    failed = events.statuses[3]
    assert failed.id == "wamid.out-2"
    assert [e.code for e in failed.errors] == [131047]
    assert failed.errors[0].title == "Re-engagement message"


def test_parse_image_caption_is_text() -> None:
    m = only_message("image")
    assert (m.kind, m.text, m.raw_type) == (Kind.IMAGE, "Is this the blue one?", "image")
    assert m.raw["image"]["id"] == "1003383421387256"


def test_parse_voice_has_no_text() -> None:
    m = only_message("voice")
    assert (m.kind, m.text) == (Kind.AUDIO, None)
    assert m.raw["audio"]["voice"] is True


def test_parse_reaction() -> None:
    m = only_message("reaction")
    assert (m.kind, m.text, m.id) == (Kind.REACTION, None, "wamid.reaction-1")


def test_parse_unsupported_and_unknown_types() -> None:
    events = parse_webhook(load_payload("unsupported"))
    assert [(m.id, m.kind, m.raw_type, m.text) for m in events.messages] == [
        ("wamid.unsupported-1", Kind.UNSUPPORTED, "unsupported", None),
        ("wamid.future-kind-1", Kind.UNSUPPORTED, "hologram", None),
    ]


def test_parse_interactive_button_list_location_contacts() -> None:
    events = parse_webhook(load_payload("interactive"))
    got = [(m.id, m.kind, m.text, m.reply_to) for m in events.messages]
    assert got == [
        ("wamid.button-reply-1", Kind.INTERACTIVE, "Yes, please", "wamid.menu-1"),
        ("wamid.list-reply-1", Kind.INTERACTIVE, "Opening hours", "wamid.menu-2"),
        ("wamid.button-1", Kind.BUTTON, "Stop promotions", "wamid.template-1"),
        ("wamid.location-1", Kind.LOCATION, None, None),
        ("wamid.contacts-1", Kind.CONTACTS, None, None),
    ]
    assert {(m.wa_id, m.profile_name) for m in events.messages} == {
        ("16505551234", "Sheena Nelson")
    }


def test_parse_business_scoped_user_id() -> None:
    m = only_message("bsuid")
    assert m.user_id == "US.13491208655302741918"
    assert m.wa_id == ""
    assert m.user_key == "US.13491208655302741918"
    assert m.recipient == "US.13491208655302741918"
    assert m.profile_name == "Jo"


def test_parse_keeps_other_phone_number_id() -> None:
    m = only_message("other_number")
    assert m.phone_number_id == "999999999999999"
    assert m.text == "Hello other line"


def _change(field: str, value: Any) -> dict[str, Any]:
    return {"entry": [{"changes": [{"field": field, "value": value}]}]}


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "str",
        42,
        {},
        {"entry": "x"},
        {"entry": [None, 1, "x", {"changes": "y"}, {"changes": [None, 3]}]},
        _change("messages", {"messages": [{"no": "id"}, 5, None]}),
        _change("messages", {"messages": "nope", "statuses": {"a": 1}, "metadata": []}),
        _change("messages", {"messages": [{"id": "wamid.no-sender", "type": "text"}]}),
        _change(
            "account_update",
            {"messages": [{"id": "wamid.x", "from": "1", "type": "text", "text": {"body": "hi"}}]},
        ),
    ],
)
def test_parse_junk_gives_nothing(payload: Any) -> None:
    events = parse_webhook(payload)
    assert (events.messages, events.statuses, events.errors) == ([], [], [])


def test_parse_odd_field_types_do_not_raise() -> None:
    payload = _change(
        "messages",
        {
            "metadata": {"phone_number_id": 106540352242922},
            "messages": [{"id": "wamid.odd", "from": 15551234, "timestamp": "soon", "type": 7}],
        },
    )
    [m] = parse_webhook(payload).messages
    assert (m.phone_number_id, m.wa_id, m.timestamp) == (PNID, "15551234", 0)
    assert m.kind is Kind.UNSUPPORTED


def test_messages_are_frozen() -> None:
    m = only_message("text")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.text = "changed"  # type: ignore[misc]
    status = parse_webhook(load_payload("statuses")).statuses[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.status = "read"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Graph API client


@pytest.fixture
def router() -> Iterator[respx.Router]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock
        check_posted_messages(call.request for call in mock.calls)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = graph_http_client(GRAPH_BASE, 5.0, library="httpx")
    yield client
    await client.aclose()


@pytest.fixture
def graph(http: httpx.AsyncClient) -> GraphClient:
    return GraphClient(
        http,
        version="v25.0",
        phone_number_id=PNID,
        token=SecretStr(TOKEN),
        backoff=Backoff(3, 0.001, 0.002),
    )


def sent_ok(wamid: str = "wamid.out-1") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
            "messages": [{"id": wamid}],
        },
    )


async def test_send_text_posts_documented_body(router: respx.Router, graph: GraphClient) -> None:
    route = router.post(MESSAGES).mock(return_value=sent_ok("wamid.abc"))
    assert await graph.send_text("16505551234", "Hello *there*") == "wamid.abc"
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"body": "Hello *there*", "preview_url": False},
    }


async def test_send_text_with_reply_to_adds_context(
    router: respx.Router, graph: GraphClient
) -> None:
    route = router.post(MESSAGES).mock(return_value=sent_ok())
    await graph.send_text("US.1", "ok", reply_to="wamid.in-1")
    body = json.loads(route.calls.last.request.content)
    assert body["context"] == {"message_id": "wamid.in-1"}
    assert body["to"] == "US.1"


async def test_send_interactive_posts_the_buttons_through_the_one_helper(
    router: respx.Router, graph: GraphClient
) -> None:
    route = router.post(MESSAGES).mock(return_value=sent_ok("wamid.buttons"))
    buttons = {
        "type": "button",
        "body": {"text": "Which size?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "choice-1", "title": "Small"}}]},
    }
    assert await graph.send_interactive("16505551234", buttons, reply_to="wamid.in-2") == (
        "wamid.buttons"
    )
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "interactive",
        "interactive": buttons,
        "context": {"message_id": "wamid.in-2"},
    }


async def test_mark_read_body(router: respx.Router, graph: GraphClient) -> None:
    route = router.post(MESSAGES).mock(return_value=httpx.Response(200, json={"success": True}))
    await graph.mark_read("wamid.in-9")
    assert route.call_count == 1
    assert json.loads(route.calls.last.request.content) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.in-9",
        "typing_indicator": {"type": "text"},
    }


async def test_get_media(router: respx.Router, graph: GraphClient) -> None:
    route = router.get(f"{GRAPH_BASE}/v25.0/1046531573838283").mock(
        return_value=httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "url": "https://lookaside.test/media?mid=1&ext=2",
                "mime_type": "audio/ogg; codecs=opus",
                "sha256": "abc=",
                "file_size": "20480",
                "id": "1046531573838283",
            },
        )
    )
    info = await graph.get_media("1046531573838283")
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert info == MediaInfo(
        id="1046531573838283",
        url="https://lookaside.test/media?mid=1&ext=2",
        mime_type="audio/ogg; codecs=opus",
        sha256="abc=",
        file_size=20480,
    )


async def test_number_names_asks_meta_for_the_two_fields(
    router: respx.Router, graph: GraphClient
) -> None:
    route = router.get(f"{GRAPH_BASE}/v25.0/{PNID}").mock(
        return_value=httpx.Response(
            200,
            json={
                "verified_name": "Padaria Central",
                "display_phone_number": "+55 11 5555-0100",
                "id": PNID,
            },
        )
    )
    names = await graph.number_names()
    request = route.calls.last.request
    assert request.url.params["fields"] == "verified_name,display_phone_number"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert names == NumberNames("Padaria Central", "+55 11 5555-0100")
    route.mock(return_value=httpx.Response(200, json={"id": PNID}))
    assert await graph.number_names() == NumberNames("", "")  # fields Meta left out


async def test_download_media_follows_redirect_with_bearer(
    router: respx.Router, graph: GraphClient
) -> None:
    first = router.get("https://lookaside.test/media", params={"mid": "1"}).mock(
        return_value=httpx.Response(302, headers={"Location": "https://lookaside.test/blob/1"})
    )
    final = router.get("https://lookaside.test/blob/1").mock(
        return_value=httpx.Response(200, content=b"\x00OggS-bytes")
    )
    data = await graph.download_media("https://lookaside.test/media?mid=1")
    assert data == b"\x00OggS-bytes"
    assert first.call_count == 1 and final.call_count == 1
    assert first.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert final.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.Response(500, json={"error": {"code": 1, "type": "x"}}), id="500"),
        pytest.param(httpx.Response(429), id="429"),
        pytest.param(graph_error(400, 130429), id="130429"),
        pytest.param(graph_error(400, 131056), id="131056"),
        pytest.param(graph_error(400, 131000), id="131000"),
        pytest.param(httpx.ConnectError("refused"), id="connect-error"),
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
    ],
)
async def test_transient_failure_is_retried(
    router: respx.Router, graph: GraphClient, failure: httpx.Response | Exception
) -> None:
    route = router.post(MESSAGES).mock(side_effect=[failure, sent_ok("wamid.second")])
    assert await graph.send_text("16505551234", "hi") == "wamid.second"
    assert route.call_count == 2


async def test_persistent_503_gives_up_after_max_attempts(
    router: respx.Router, graph: GraphClient
) -> None:
    route = router.post(MESSAGES).mock(return_value=httpx.Response(503))
    with pytest.raises(GraphAPIError) as caught:
        await graph.send_text("16505551234", "hi")
    assert route.call_count == 3
    assert (caught.value.status, caught.value.transient) == (503, True)


async def test_persistent_connect_error_becomes_graph_error(
    router: respx.Router, graph: GraphClient
) -> None:
    route = router.post(MESSAGES).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(GraphAPIError) as caught:
        await graph.mark_read("wamid.x")
    assert route.call_count == 3
    assert (caught.value.status, caught.value.code, caught.value.transient) == (None, None, True)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 131047), (401, 190), (400, 100), (400, 368), (403, 131030), (400, 131026)],
)
async def test_permanent_error_is_not_retried(
    router: respx.Router, graph: GraphClient, status: int, code: int
) -> None:
    route = router.post(MESSAGES).mock(return_value=graph_error(status, code))
    with pytest.raises(GraphAPIError) as caught:
        await graph.send_text("16505551234", "hi")
    assert route.call_count == 1
    assert (caught.value.status, caught.value.code, caught.value.transient) == (
        status,
        code,
        False,
    )


async def test_non_json_502_is_still_a_graph_error(
    router: respx.Router, graph: GraphClient
) -> None:
    route = router.post(MESSAGES).mock(
        return_value=httpx.Response(502, text="<html>Bad Gateway</html>")
    )
    with pytest.raises(GraphAPIError) as caught:
        await graph.send_text("16505551234", "hi")
    assert route.call_count == 3
    assert (caught.value.status, caught.value.code, caught.value.transient) == (502, None, True)
    assert "502" in str(caught.value)


async def test_permanent_failure_log_names_code_not_token(
    router: respx.Router, graph: GraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    router.post(MESSAGES).mock(return_value=graph_error(400, 131047))
    with caplog.at_level(logging.INFO, logger="whatsapp"), pytest.raises(GraphAPIError):
        await graph.send_text("16505551234", "a private message")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "131047" in warnings[0].getMessage()
    assert "send_text" in warnings[0].getMessage()
    assert TOKEN not in caplog.text
    assert "a private message" not in caplog.text


async def test_plain_async_client_with_base_url(router: respx.Router) -> None:
    route = router.post(MESSAGES).mock(return_value=sent_ok("wamid.plain"))
    async with httpx.AsyncClient(base_url="https://graph.test") as client:
        graph = GraphClient(
            client,
            version="v25.0",
            phone_number_id=PNID,
            token=SecretStr("t"),
            backoff=Backoff(1),
        )
        assert await graph.send_text("1", "x") == "wamid.plain"
    assert route.calls.last.request.headers["Authorization"] == "Bearer t"


async def test_two_businesses_share_one_client_each_with_its_own_token_and_number(
    router: respx.Router, http: httpx.AsyncClient
) -> None:
    first = router.post("https://graph.test/v25.0/111/messages").mock(return_value=sent_ok())
    second = router.post("https://graph.test/v25.0/222/messages").mock(return_value=sent_ok())
    padaria = GraphClient(http, version="v25.0", phone_number_id="111", token=SecretStr("tok-p"))
    oficina = GraphClient(http, version="v25.0", phone_number_id="222", token=SecretStr("tok-o"))
    await padaria.send_text("5511999990000", "pão")
    await oficina.send_text("5511999990000", "carro")
    assert first.calls.last.request.headers["Authorization"] == "Bearer tok-p"
    assert second.calls.last.request.headers["Authorization"] == "Bearer tok-o"
    assert "Authorization" not in http.headers  # the shared client carries no one's token
