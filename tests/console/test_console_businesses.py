"""Several businesses on one deployment, seen from the console: an operator's reply goes out
from the conversation's own business (its number, its token), never the default one's."""

from __future__ import annotations

import pytest
from console_apps import ADMIN_PASSWORD, console_app, number_id, token
from console_support import signed_in, visible_text
from helpers import PHONE_NUMBER_ID, WHATSAPP_TOKEN
from respx_upstreams import FakeUpstreams

BUSINESSES = ("Padaria Central", "Oficina Rápida")


@pytest.mark.parametrize("index", [0, 1])
async def test_an_operators_reply_goes_out_from_the_conversations_business(
    database_url: str, fakes: FakeUpstreams, index: int
) -> None:
    """Two businesses of TENANTS_FILE, and the default one of PHONE_NUMBER_ID beside them."""
    async with console_app(
        database_url,
        fakes,
        businesses=BUSINESSES,
        phone_number_id=PHONE_NUMBER_ID,
        whatsapp_token=WHATSAPP_TOKEN,
    ) as console:
        assert console.settings.businesses.names() == ["default", *BUSINESSES]
        await console.write("Hello", name="Ana", wa_id="5511900001111", to=PHONE_NUMBER_ID)
        customer = await console.write(
            "I need a person", name="Bruno", wa_id="5521900002222", to=number_id(index)
        )
        assert fakes.senders[-1] == (number_id(index), token(index))  # the assistant's answer
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        base = f"/console/conversations/{customer}"
        assert BUSINESSES[index] in visible_text((await console.client.get(base)).text)
        await console.client.post(f"{base}/take-over")
        senders_before = len(fakes.senders)
        response = await console.client.post(f"{base}/reply", data={"text": "Maria here."})
        assert response.status_code == 303
        assert "Sent." in (await console.client.get(base)).text
    [(number, bearer)] = fakes.senders[senders_before:]
    assert (number, bearer) == (number_id(index), token(index))
    [reply] = fakes.sent()[-1:]
    assert (reply["to"], reply["text"]["body"]) == ("5521900002222", "Maria here.")
