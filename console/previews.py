"""A conversation's newest message as its entry in the list previews it: as WhatsApp showed it."""

from __future__ import annotations

import re

from domain.types import Role
from markup.whatsapp import markdown_to_whatsapp

PREVIEW_CHARS = 200  # the list's template shortens it further, at a word
_FENCE = re.compile(r"[ \t]*(?:`{3,}|~{3,})[^`]*")


def preview(text: str, role: str) -> str:
    """The message on one line, as its transcript entry shows it: a customer's words as they
    wrote them; an answer or an operator's message in WhatsApp's formatting (`*bold*`,
    `_italic_`, `~strike~`, a link as its text and address), never Gemini's Markdown. A code
    block's fence lines are left out: on one line they would only be backticks."""
    shown = markdown_to_whatsapp(text) if role == Role.MODEL.value else text
    lines = (line for line in shown.splitlines() if not _FENCE.fullmatch(line))
    return " ".join(" ".join(lines).split())[:PREVIEW_CHARS]
