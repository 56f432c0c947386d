"""A conversation page's template form: the business's approved templates and the one chosen."""

from __future__ import annotations

from typing import Any, cast

from fastapi import Request

from answering.templates import Catalogue, TemplateDesk
from console import words
from console.data import ConversationSummary
from console.web import console_of
from domain.businesses import Business
from domain.templates import Template


def templates_of(request: Request) -> TemplateDesk | None:
    """The template desk the lifespan opened; None when the console's data is not the store's."""
    return cast(TemplateDesk | None, getattr(request.app.state, "templates", None))


def business_of(request: Request, summary: ConversationSummary) -> Business | None:
    return console_of(request).settings.businesses.named(summary.business)


async def template_context(
    request: Request, summary: ConversationSummary, chosen_key: str
) -> dict[str, Any]:
    """What `_templates.html` shows: the catalogue, the template chosen (by `?template=`, else
    the first), and why there is none to offer."""
    desk = templates_of(request)
    business = business_of(request, summary)
    catalogue = Catalogue(configured=False)
    if desk is not None and business is not None:
        catalogue = await desk.catalogue(business)
    chosen: Template | None = catalogue.find(chosen_key) or next(iter(catalogue.templates), None)
    problem = None
    if not catalogue.configured:
        problem = words.TEMPLATES_NEED_ACCOUNT
    elif catalogue.error is not None:
        problem = words.templates_unavailable(catalogue.error)
    elif not catalogue.templates:
        problem = words.NO_TEMPLATES
    return {"catalogue": catalogue, "chosen": chosen, "templates_problem": problem}
