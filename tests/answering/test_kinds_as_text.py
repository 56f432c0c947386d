"""The other kinds of message: buttons, lists, places and orders as text; stickers and the rest."""

from __future__ import annotations

import pytest
from helpers import Harness, load_payload
from media_support import bodies, last_text_part, media_message

from answering.inbound import describe
from language.replies import Reply, reply_text
from webhook.events import Kind

# The English fixed replies: the users of these tests have US numbers.
STICKER_REPLY = reply_text(Reply.STICKER, "en")
UNSUPPORTED_REPLY = reply_text(Reply.UNSUPPORTED, "en")


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
