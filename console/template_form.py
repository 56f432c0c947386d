"""A conversation page's template form: the business's approved templates and the one chosen."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from answering.templates import Catalogue
from console import words
from console.web import console_of, language_of
from domain.businesses import Business
from domain.templates import Template
from storage.states import Conversation


def business_of(request: Request, conversation: Conversation) -> Business | None:
    """The conversation's business, while this deployment still serves it."""
    return console_of(request).settings.businesses.get(conversation.phone_number_id)


async def template_context(
    request: Request, conversation: Conversation, chosen_key: str
) -> dict[str, Any]:
    """What `_templates.html` shows: the catalogue, the template chosen (by `?template=`, else
    the first), and why there is none to offer."""
    business = business_of(request, conversation)
    catalogue = Catalogue(configured=False)
    if business is not None:
        catalogue = await console_of(request).template_desk.catalogue(business)
    chosen: Template | None = catalogue.find(chosen_key) or next(iter(catalogue.templates), None)
    problem, language = None, language_of(request)
    if not catalogue.configured:
        problem = language.gettext(words.TEMPLATES_NEED_ACCOUNT)
    elif catalogue.error is not None:
        problem = words.templates_unavailable(catalogue.error, language)
    elif not catalogue.templates:
        problem = language.gettext(words.NO_TEMPLATES)
    return {"catalogue": catalogue, "chosen": chosen, "templates_problem": problem}
