"""Choices as WhatsApp reply buttons or a list (INTERACTIVE_REPLIES): the shapes the contract
gives, the plain-text fallback, taps answered as text, and what the history keeps."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Harness, load_payload, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams
from strict_gemini import StrictGemini

from actions.choices import Choices, choices_of, interactive
from webhook.events import Kind, parse_webhook

USER = "16505551234"
BRAZILIAN = "5511987654321"


def test_up_to_three_short_options_are_reply_buttons() -> None:
    message = interactive(Choices("Which **size**?", ("Small", "Medium", "Large")), "en")
    assert message == {
        "type": "button",
        "body": {"text": "Which *size*?"},  # WhatsApp formatting
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "choice-1", "title": "Small"}},
                {"type": "reply", "reply": {"id": "choice-2", "title": "Medium"}},
                {"type": "reply", "reply": {"id": "choice-3", "title": "Large"}},
            ]
        },
    }


@pytest.mark.parametrize(
    ("language", "label"), [("en", "See options"), ("pt-BR", "Ver opções"), ("es", "Ver opciones")]
)
def test_up_to_ten_options_of_24_characters_are_a_list_labelled_in_the_users_language(
    language: str, label: str
) -> None:
    options = tuple(f"Saturday {hour}:00" for hour in range(8, 12))
    message = interactive(Choices("When would you like to come?", options), language)
    assert message == {
        "type": "list",
        "body": {"text": "When would you like to come?"},
        "action": {
            "button": label,
            "sections": [
                {"rows": [{"id": f"choice-{i}", "title": o} for i, o in enumerate(options, 1)]}
            ],
        },
    }


def test_two_options_too_long_for_a_button_are_a_list() -> None:
    message = interactive(Choices("Pick one", ("Chocolate fudge brownie", "Plain")), "en")
    assert message is not None and message["type"] == "list"


@pytest.mark.parametrize(
    "choices",
    [
        Choices("Pick one", tuple(f"Option {n}" for n in range(1, 12))),  # 11 options
        Choices("Pick one", ("A", "An option far longer than 24")),  # 28 characters
        Choices("x" * 1025, ("Yes", "No")),  # a text over 1024 characters
    ],
    ids=["eleven options", "option over 24 characters", "text over 1024 characters"],
)
def test_what_fits_neither_is_plain_text_with_the_options_numbered(choices: Choices) -> None:
    assert interactive(choices, "en") is None
    numbered = choices.as_text().split("\n\n")[-1].splitlines()
    assert numbered == [f"{n}. {o}" for n, o in enumerate(choices.options, 1)]


def test_the_arguments_are_checked_and_options_kept_once() -> None:
    assert choices_of({"text": " Size? ", "options": ["S", " M ", "S", "L"]}) == Choices(
        "Size?", ("S", "M", "L")
    )
    assert choices_of({"text": "Size?", "options": ["S", "S"]}) == (
        "options must hold at least 2 different options"
    )
    assert (
        choices_of({"options": ["S", "M"]}) == "text must be the message to show above the options"
    )
    assert choices_of({"text": "Size?", "options": "S, M"}) == "options must be a list of strings"


@pytest.mark.parametrize(
    ("name", "title"), [("button_reply", "Medium"), ("list_reply", "Saturday 10:00")]
)
def test_a_tap_is_an_interactive_message_whose_text_is_the_title(name: str, title: str) -> None:
    [message] = parse_webhook(load_payload(name)).messages
    assert message.kind is Kind.INTERACTIVE
    assert message.text == title
    assert message.reply_to == "wamid.out-1"


@pytest.fixture
async def app(fakes: FakeUpstreams, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(make_settings(f"sqlite:///{tmp_path}/choices.db"), fakes) as running:
        yield running


def interactive_sent(app: Harness) -> list[dict[str, Any]]:
    return [b for b, status in app.fakes.graph_calls if b.get("type") == "interactive"]


async def say(app: Harness, payload: Any) -> None:
    assert (await app.post(payload)).status_code == 200
    await app.settle()


async def test_gemini_offers_buttons_the_user_taps_one_and_history_keeps_both(
    app: Harness,
) -> None:
    gemini = StrictGemini()
    app.fakes.gemini_queue += [
        gemini.calls(
            ("offer_choices", {"text": "Which size?", "options": ["Small", "Medium", "Large"]})
        ),
        gemini.text("Medium it is: R$ 30."),
    ]
    await say(app, text_payload("I want a pizza", message_id="wamid.c1"))
    [sent] = interactive_sent(app)
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": USER,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Which size?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "choice-1", "title": "Small"}},
                    {"type": "reply", "reply": {"id": "choice-2", "title": "Medium"}},
                    {"type": "reply", "reply": {"id": "choice-3", "title": "Large"}},
                ]
            },
        },
    }
    assert app.fakes.sent() == []  # no text besides
    assert len(app.fakes.gemini_calls) == 1  # the offer ends the answer

    await say(app, load_payload("button_reply"))
    contents = app.fakes.gemini_bodies()[-1]["contents"]
    assert contents == [
        {"role": "user", "parts": [{"text": "I want a pizza"}]},
        {"role": "model", "parts": [{"text": "Which size?\n\n1. Small\n2. Medium\n3. Large"}]},
        {"role": "user", "parts": [{"text": "Medium"}]},
    ]
    assert [m["text"]["body"] for m in app.fakes.sent()] == ["Medium it is: R$ 30."]


async def test_a_list_goes_to_a_brazilian_customer_with_a_portuguese_button(app: Harness) -> None:
    options = ["Sábado 09:00", "Sábado 10:00", "Sábado 11:00", "Domingo 10:00"]
    app.fakes.gemini_queue.append(
        StrictGemini().calls(("offer_choices", {"text": "Qual horário?", "options": options}))
    )
    await say(app, text_payload("Quero agendar", message_id="wamid.c2", wa_id=BRAZILIAN))
    [sent] = interactive_sent(app)
    assert sent["to"] == BRAZILIAN
    message = sent["interactive"]
    assert (message["type"], message["action"]["button"]) == ("list", "Ver opções")
    assert [r["title"] for r in message["action"]["sections"][0]["rows"]] == options


async def test_too_many_options_go_as_plain_text(app: Harness) -> None:
    options = [f"Flavour {n}" for n in range(1, 13)]
    app.fakes.gemini_queue.append(
        StrictGemini().calls(("offer_choices", {"text": "Which flavour?", "options": options}))
    )
    await say(app, text_payload("Flavours?", message_id="wamid.c3"))
    assert interactive_sent(app) == []
    [text] = [m["text"]["body"] for m in app.fakes.sent()]
    assert text.startswith("Which flavour?\n\n1. Flavour 1\n2. Flavour 2\n")
    assert text.endswith("12. Flavour 12")


async def test_nothing_interactive_goes_outside_the_24_hour_window(
    app: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window is checked before answering; should it close while Gemini answers, the
    choices are not sent as buttons (Meta refuses free-form messages then, as text too)."""
    monkeypatch.setattr("answering.sending.outside_reply_window", lambda row, now: True)
    app.fakes.gemini_queue.append(
        StrictGemini().calls(("offer_choices", {"text": "Size?", "options": ["S", "M"]}))
    )
    await say(app, text_payload("Pizza", message_id="wamid.c4"))
    assert interactive_sent(app) == []
    assert [m["text"]["body"] for m in app.fakes.sent()] == ["Size?\n\n1. S\n2. M"]


async def test_an_offer_gemini_gets_wrong_is_answered_with_what_is_wrong(app: Harness) -> None:
    gemini = StrictGemini()
    app.fakes.gemini_queue += [
        gemini.calls(("offer_choices", {"text": "Size?", "options": ["Only one"]})),
        gemini.text("We have one size."),
    ]
    await say(app, text_payload("Sizes?", message_id="wamid.c5"))
    response = app.fakes.gemini_bodies()[-1]["contents"][-1]["parts"][0]["functionResponse"]
    assert response["response"] == {"error": "options must hold at least 2 different options"}
    assert gemini.refused == []
    assert [m["text"]["body"] for m in app.fakes.sent()] == ["We have one size."]


async def test_with_interactive_replies_off_nothing_is_offered(
    fakes: FakeUpstreams, tmp_path: Path
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/off.db", interactive_replies="off")
    async with running_app(settings, fakes) as app:
        await say(app, text_payload("Hello", message_id="wamid.c6"))
    body = app.fakes.gemini_bodies()[0]
    assert "tools" not in body
    assert "offer_choices" not in body["systemInstruction"]["parts"][0]["text"]


async def test_a_voice_note_answered_with_choices_gets_the_buttons_not_audio(
    app: Harness,
) -> None:
    payload = copy.deepcopy(load_payload("voice"))
    app.fakes.add_media("1046531573838283", b"OggS" + bytes(2000), "audio/ogg; codecs=opus")
    app.fakes.gemini_queue.append(
        StrictGemini().calls(("offer_choices", {"text": "Size?", "options": ["S", "M"]}))
    )
    await say(app, payload)
    assert app.fakes.voice_notes() == []
    assert len(interactive_sent(app)) == 1
