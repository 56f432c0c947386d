"""Sending a template from a conversation's page (its form: console/template_form.py)."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Request, Response

from answering.templates import Refusal, TemplateSent
from console import words
from console.conversations import visible
from console.template_form import business_of
from console.web import PREFIX, OperatorDep, console_of, redirect_with_flash
from ops.logs import short_hash

log = logging.getLogger("console")

MAX_PARAMETERS = 50


def refusal_text(result: TemplateSent) -> str:
    if result.refusal is Refusal.EMPTY_PARAMETER:
        return words.empty_parameter(result.label or words.PARAMETER)
    if result.refusal is Refusal.META and result.error is not None:
        return f"{words.NOT_SENT} {words.refused_by_meta(result.error)}"
    if result.refusal is Refusal.NOT_CONFIGURED:
        return f"{words.NOT_SENT} {words.TEMPLATES_NEED_ACCOUNT}"
    if result.refusal is Refusal.PARAMETERS_CHANGED:
        return words.TEMPLATE_CHANGED
    if result.refusal is Refusal.NO_BUSINESS:
        return words.BUSINESS_GONE
    return words.UNKNOWN_TEMPLATE


async def send_template(
    request: Request,
    operator: OperatorDep,
    conversation_id: int,
    template: Annotated[str, Form()] = "",
    parameter: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Send the chosen template with its parameters; the page says what happened."""
    conversation = await visible(request, operator, conversation_id)
    values = (parameter or [])[:MAX_PARAMETERS]
    business = business_of(request, conversation)
    desk = console_of(request).template_desk
    result = await desk.send(conversation, business, operator.username, template, values)
    log.info(
        "template for conversation %d by %s %s",
        conversation_id,
        short_hash(operator.username),
        "sent" if result.sent else f"refused ({result.refusal})",
    )
    url = f"{PREFIX}/conversations/{conversation_id}"
    if result.sent:
        return redirect_with_flash(request, url, "ok", words.TEMPLATE_SENT)
    if template:
        url += f"?template={quote(template, safe='')}"
    return redirect_with_flash(request, url, "error", refusal_text(result))
