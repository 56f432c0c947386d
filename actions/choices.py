"""Choices offered as WhatsApp reply buttons or a list, else as a numbered list in the text.

Gemini calls `offer_choices(text, options)`; the answer is then one interactive message: up to
3 options of at most 20 characters as reply buttons, up to 10 of at most 24 as a one-section
list; anything larger as plain text. A tap comes back as a message whose text is the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from language.replies import Phrase, phrase_text
from markup.whatsapp import markdown_to_whatsapp

if TYPE_CHECKING:
    from google.genai import types

OFFER_CHOICES = "offer_choices"
MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_BUTTONS, BUTTON_TITLE_CHARS = 3, 20
ROW_TITLE_CHARS = 24
BODY_CHARS = 1024
LIST_BUTTON_CHARS = 20

PROMPT_HINT = (
    "When the customer has to pick one of a few options (a size, a day, a product), call the "
    "function offer_choices with your message and the options, instead of writing the options "
    "out: WhatsApp then shows them as buttons or a list."
)


def offer_choices_tool() -> types.ToolDict:
    """The function Gemini calls to offer the customer a choice."""
    return {
        "function_declarations": [
            {
                "name": OFFER_CHOICES,
                "description": (
                    "Offer the customer a choice between a few options, shown on WhatsApp as "
                    "buttons or a list they tap. Your message goes in `text`; each option is a "
                    "short label, ideally at most 20 characters."
                ),
                "parameters": cast(
                    "types.SchemaDict",
                    {
                        "type": "OBJECT",
                        "properties": {
                            "text": {
                                "type": "STRING",
                                "description": "The message above the options.",
                            },
                            "options": {
                                "type": "ARRAY",
                                "items": {"type": "STRING"},
                                "min_items": MIN_OPTIONS,
                                "max_items": MAX_OPTIONS,
                                "description": "The options, each a short label.",
                            },
                        },
                        "required": ["text", "options"],
                    },
                ),
            }
        ]
    }


@dataclass(frozen=True, slots=True)
class Choices:
    """A message and the options it offers, as Gemini gave them."""

    text: str
    options: tuple[str, ...]

    def as_text(self) -> str:
        """The message and a numbered list of every option: what history keeps, and what is
        sent where buttons and lists do not fit."""
        numbered = "\n".join(f"{index}. {option}" for index, option in enumerate(self.options, 1))
        return f"{self.text}\n\n{numbered}"


def choices_of(args: dict[str, Any]) -> Choices | str:
    """The choices of an offer_choices call, or what is wrong with its arguments."""
    text = args.get("text")
    options = args.get("options")
    if not isinstance(text, str) or not text.strip():
        return "text must be the message to show above the options"
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        return "options must be a list of strings"
    unique: list[str] = []
    for option in (" ".join(o.split()) for o in options):
        if option and option not in unique:
            unique.append(option)
    if len(unique) < MIN_OPTIONS:
        return f"options must hold at least {MIN_OPTIONS} different options"
    return Choices(text.strip(), tuple(unique))


def interactive(choices: Choices, language: str) -> dict[str, Any] | None:
    """The `interactive` object of a WhatsApp message for these choices (buttons or a list),
    or None when they only fit as plain text."""
    body = markdown_to_whatsapp(choices.text).strip()
    options = choices.options
    if len(body) > BODY_CHARS or len(options) > MAX_OPTIONS:
        return None
    if len(options) <= MAX_BUTTONS and all(len(o) <= BUTTON_TITLE_CHARS for o in options):
        buttons = [
            {"type": "reply", "reply": {"id": f"choice-{index}", "title": option}}
            for index, option in enumerate(options, 1)
        ]
        return {"type": "button", "body": {"text": body}, "action": {"buttons": buttons}}
    if all(len(o) <= ROW_TITLE_CHARS for o in options):
        rows = [
            {"id": f"choice-{index}", "title": option} for index, option in enumerate(options, 1)
        ]
        label = phrase_text(Phrase.LIST_BUTTON, language)[:LIST_BUTTON_CHARS]
        return {
            "type": "list",
            "body": {"text": body},
            "action": {"button": label, "sections": [{"rows": rows}]},
        }
    return None
