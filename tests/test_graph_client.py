"""The Graph API client (whatsapp.py): the documented bodies, media, retries and errors, tokens."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx
from helpers import GRAPH_BASE
from meta_openapi import check_posted_messages
from pydantic import SecretStr
from respx_upstreams import graph_error
from stored_payloads import PNID

from domain.types import Backoff
from whatsapp import (
    GraphAPIError,
    GraphClient,
    MediaInfo,
    NumberNames,
    graph_http_client,
)

TOKEN = "graph-token-abc123XYZ"
MESSAGES = f"{GRAPH_BASE}/v25.0/{PNID}/messages"


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
