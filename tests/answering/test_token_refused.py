"""An expired or invalid WhatsApp token (Graph error 190): said once at ERROR, /ready unhealthy,
and no Gemini call paid for messages that cannot be answered."""

from __future__ import annotations

import pytest
from helpers import WHATSAPP_TOKEN, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, graph_error

from domain.types import MessageState


async def test_a_refused_token_stops_gemini_says_what_to_do_once_and_fails_ready(
    database_url: str, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes.read_queue.extend([graph_error(401, 190)] * 2)
    async with running_app(make_settings(database_url), fakes) as app:
        assert (await app.client.get("/ready")).status_code == 200
        await app.post(text_payload("Hello?", message_id="wamid.r1"))
        await app.settle()
        await app.post(text_payload("Anyone?", message_id="wamid.r2"))
        await app.settle()
        ready = await app.client.get("/ready")
        states = [await app.services.store.inbox.state_of(m) for m in ("wamid.r1", "wamid.r2")]

    assert fakes.gemini_calls == []  # nothing billed for answers that cannot be sent
    assert fakes.sent() == []
    assert states == [MessageState.FAILED, MessageState.FAILED]
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "reason": "Meta refused the WhatsApp token of default (error 190)",
    }
    output = capsys.readouterr().err  # the service's log handler writes to stderr
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, output  # once, not once per message
    assert "error 190" in errors[0] and "'default'" in errors[0] and "restart" in errors[0]
    assert WHATSAPP_TOKEN not in output


async def test_a_new_token_makes_the_service_ready_again(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.send_queue.append(graph_error(401, 190))  # refused on the send, this time
    async with running_app(make_settings(database_url), fakes) as app:
        await app.post(text_payload("Hello?", message_id="wamid.n1"))
        await app.settle()
        assert (await app.client.get("/ready")).status_code == 503
    renewed = make_settings(database_url, whatsapp_token="a-new-system-user-token-7f1")
    async with running_app(renewed, fakes) as app:
        assert (await app.client.get("/ready")).status_code == 200
        await app.post(text_payload("Hello again", message_id="wamid.n2"))
        await app.settle()
    assert fakes.sent()[-1]["text"]["body"] == "You said: Hello again"
