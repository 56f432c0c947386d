"""Parsing Meta's webhook payloads (webhook/events.py): every kind, batches, statuses, junk."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from stored_payloads import PNID, load_payload

from webhook.events import InboundMessage, Kind, parse_webhook

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
