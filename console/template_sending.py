"""Sending a template from a conversation's page (its form: console/template_form.py)."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Request, Response

from answering.templates import Refusal, TemplateSent
from console import words
from console.conversations import visible
from console.languages import Language
from console.template_form import business_of
from console.web import PREFIX, OperatorDep, console_of, language_of, redirect_with_flash
from ops.logs import short_hash

log = logging.getLogger("console")

MAX_PARAMETERS = 50


def refusal_text(result: TemplateSent, language: Language) -> str:
    """Why the template was not sent, in the page's language."""
    say = language.gettext
    if result.refusal is Refusal.EMPTY_PARAMETER:
        label = words.parameter_label(result.label or "", language)
        label = label or say(words.PARAMETER, number="").strip()
        return words.empty_parameter(label, language)
    if result.refusal is Refusal.META and result.error is not None:
        return f"{say(words.NOT_SENT)} {words.refused_by_meta(result.error, language)}"
    if result.refusal is Refusal.NOT_CONFIGURED:
        return f"{say(words.NOT_SENT)} {say(words.TEMPLATES_NEED_ACCOUNT)}"
    if result.refusal is Refusal.PARAMETERS_CHANGED:
        return say(words.TEMPLATE_CHANGED)
    if result.refusal is Refusal.NO_BUSINESS:
        return say(words.BUSINESS_GONE)
    return say(words.UNKNOWN_TEMPLATE)


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
        return redirect_with_flash(
            request, url, "ok", language_of(request).gettext(words.TEMPLATE_SENT)
        )
    if template:
        url += f"?template={quote(template, safe='')}"
    return redirect_with_flash(request, url, "error", refusal_text(result, language_of(request)))
